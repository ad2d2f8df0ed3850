"""Training patches: an HR crop, its augmentations, the LR input simulated from it and spline-interpolated
back (the ILR input Z of Pham et al.), with one random scale factor per patch.

Determinism: patch batch ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` and the
``affine`` warps from ``[seed, 7, i // AFFINE_EVERY]``, so a resumed run draws what the
uninterrupted one would have.
"""

from __future__ import annotations

import math

import numpy as np

from mrsr_cli.data.geometry import pad_to
from mrsr_cli.models.channels import encode_reference, psf_encoding
from mrsr_cli.training.augment import apply_intensity, augment_patch, draw_intensity, synthetic_reference, warp_volume
from mrsr_cli.training.config import KSPACE_WINDOWS, PSF_FWHM_RANGE, PSF_INPUT_FWHM_RANGE, PSF_SHAPES, PSF_SIMULATE_FRACTION, TrainConfig
from mrsr_cli.training.volumes import TrainingVolume

AFFINE_EVERY = 50  # iterations between fresh random affine warps of the training volumes
# Voxels around a patch that encode_reference reads: the "edges" Gaussian derivative (σ 0.5
# voxel, truncated at 4σ) reaches 2; patch margins are at least 8.
ENCODING_RIM = 3



class PatchSampler:
    """Draws (ILR, HR[, reference]) patch batches with a random scale factor per patch."""

    def __init__(self, volumes: list[TrainingVolume], cfg: TrainConfig):
        self.volumes = volumes
        self.cfg = cfg
        self._warped: tuple[int, list[TrainingVolume]] | None = None
        self.low_field = cfg.low_field()  # once, not per patch

    def _current(self, iteration: int) -> list[TrainingVolume]:
        """The volumes to draw from: with the ``affine`` augmentation, a random warp of each,
        renewed every AFFINE_EVERY iterations (a function of seed and iteration: resumable)."""
        if "affine" not in self.cfg.augment:
            return self.volumes
        block = iteration // AFFINE_EVERY
        if self._warped is None or self._warped[0] != block:
            rng = np.random.default_rng([self.cfg.seed, 7, block])
            self._warped = (block, [warp_volume(v, rng) for v in self.volumes])
        return self._warped[1]

    def factor(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.cfg
        if cfg.unit_fraction and rng.random() < cfg.unit_fraction:
            return np.ones(3)
        use_range = cfg.scale_range is not None and (not cfg.scales or rng.random() < 0.5)
        if use_range:
            return rng.uniform(cfg.scale_range[0], cfg.scale_range[1], size=3)
        return np.asarray(cfg.scales[rng.integers(len(cfg.scales))], dtype=np.float64)

    def voxel_size(self, rng: np.random.Generator) -> np.ndarray:
        """A random HR voxel size (mm) in ``cfg.voxel_size_range``: isotropic half the time,
        else drawn per axis (log-uniform: as many patches finer as coarser than the geometric mean)."""
        lo, hi = np.log(self.cfg.voxel_size_range)
        if rng.random() < 0.5:
            return np.full(3, np.exp(rng.uniform(lo, hi)))
        return np.exp(rng.uniform(lo, hi, size=3))

    def lr_psf(self, rng: np.random.Generator) -> tuple[str, float, str | None]:
        """``(shape, FWHM in LR voxels, k-space window or None)`` of a patch's LR degradation:
        simulate's Gaussian of one LR voxel, or with the ``psf`` augmentation a random PSF or, in
        ``cfg.kspace_fraction`` of patches, a k-space truncation (module constants PSF_*,
        KSPACE_WINDOWS; its width: :func:`~mrsr_cli.degrade.kspace.equivalent_gaussian_fwhm`)."""
        if "psf" not in self.cfg.augment:
            return "gaussian", 1.0, None
        if self.cfg.kspace_fraction and rng.random() < self.cfg.kspace_fraction:
            from mrsr_cli.degrade.kspace import equivalent_gaussian_fwhm

            window = KSPACE_WINDOWS[rng.integers(len(KSPACE_WINDOWS))]
            return "gaussian", equivalent_gaussian_fwhm(window), window
        if self.cfg.psf_input:
            if rng.random() < PSF_SIMULATE_FRACTION:
                return "gaussian", 1.0, None
            return PSF_SHAPES[rng.integers(len(PSF_SHAPES))], float(rng.uniform(*PSF_INPUT_FWHM_RANGE)), None
        # acquisitions and resampling tools differ in blur: blind to it, do not learn one
        return PSF_SHAPES[rng.integers(len(PSF_SHAPES))], float(rng.uniform(*PSF_FWHM_RANGE)), None

    def patch(self, rng: np.random.Generator, iteration: int = 0) -> tuple:
        """``(ILR, HR, reference or None, factor, voxel size, PSF encoding)``: patches of
        ``cfg.patch``³ voxels, the per-axis factor, the HR voxel size (mm) and the LR PSF's
        :func:`~mrsr_cli.models.channels.psf_encoding` along the patch's (augmented) array axes."""
        from mrsr_cli.degrade.simulate import lowres_on_hr_grid, training_psf

        cfg = self.cfg
        volumes = self._current(iteration)
        vol = volumes[rng.integers(len(volumes))]
        if vol.ilr is not None:
            return self._pair_patch(vol, rng)
        factor = self.factor(rng)
        p = cfg.patch
        # margin: PSF tails (≈1.7 F voxels) plus the spline's reach on the LR grid (≈4 F voxels)
        margin = int(math.ceil(6 * factor.max())) + 2
        size = p + 2 * margin
        centre = vol.centres[rng.integers(len(vol.centres))]
        voxel_size = np.asarray(vol.voxel_size, dtype=np.float64)
        tissue = None
        if cfg.voxel_size_range is not None:  # the same anatomy at another voxel scale
            drawn = self.voxel_size(rng)
            # finer than the data, a target is only a spline of it: coarsen_only keeps targets real
            voxel_size = np.maximum(drawn, voxel_size) if cfg.coarsen_only else drawn
            hr, ref, tissue = resampled_patch(vol, centre, size, voxel_size)
        else:
            start = np.clip(centre - size // 2, 0, np.maximum(np.array(vol.data.shape) - size, 0))
            box = tuple(slice(s, s + size) for s in start)
            hr = pad_to(vol.data[box], size)
            ref = pad_to(vol.reference[box], size) if vol.reference is not None else None
            if vol.tissue is not None:
                tissue = pad_to(vol.tissue[(slice(None),) + box], size)
        hr = augment_patch(hr, cfg.augment, rng)
        if cfg.synthetic_reference:
            ref = synthetic_reference(hr, tissue, rng)
        noise = rng.uniform(0, 0.03) if "noise" in cfg.augment else 0.0
        source = hr
        low_field = self.low_field
        if low_field is not None:  # the input is a low-field scan; the target keeps the source field's contrast
            noise = float(np.hypot(noise, low_field.noise_fraction()))
            if tissue is not None:
                source = hr * low_field.contrast_map(tissue)
        psf_code = np.zeros(3)
        if factor.max() > 1 + 1e-6:
            psf, fwhm_scale, window = self.lr_psf(rng)
            ilr = lowres_on_hr_grid(source, voxel_size, factor, psf=psf, noise_sigma=noise, rng=rng,
                                    slice_thickness=cfg.slice_thickness, slice_profile=cfg.slice_profile,
                                    fwhm_scale=fwhm_scale, acquisition="psf" if window is None else "kspace",
                                    window=window or "none")
            if cfg.psf_input:
                lr_vox = voxel_size * factor
                fwhm, shapes = training_psf(lr_vox, psf=psf, slice_thickness=cfg.slice_thickness,
                                            slice_profile=cfg.slice_profile, fwhm_scale=fwhm_scale)
                psf_code = np.asarray(psf_encoding(np.asarray(fwhm) / lr_vox, shapes, factor))
        elif low_field is not None:  # same grid: a low-field scan of the same resolution
            from mrsr_cli.degrade.simulate import rician_noise

            ilr = rician_noise(source, noise, rng)
        else:
            ilr = hr.copy()
        inner = (slice(margin, margin + p),) * 3
        if ref is not None:  # encoded with a rim of ENCODING_RIM voxels: the filter's reach, so no patch border shows
            with_rim = (slice(margin - ENCODING_RIM, margin + p + ENCODING_RIM),) * 3
            ref = encode_reference(ref[with_rim], cfg.reference_encoding)[(slice(ENCODING_RIM, ENCODING_RIM + p),) * 3]
        arrays = [ilr[inner], hr[inner]] + ([ref] if ref is not None else [])
        return self._finish(arrays, factor, voxel_size, rng, psf_code)

    def _finish(self, arrays: list, factor: np.ndarray, voxel_size, rng: np.random.Generator, psf_code=None):
        """Flip and permute the patch arrays alike (the factor, voxel size and PSF move with the axes)."""
        voxel_size = np.asarray(voxel_size, dtype=np.float64)
        psf_code = np.zeros(3) if psf_code is None else np.asarray(psf_code, dtype=np.float64)
        if "flip" in self.cfg.augment:
            for axis in range(3):
                if rng.random() < 0.5:
                    arrays = [np.flip(a, axis) for a in arrays]
        if "permute" in self.cfg.augment:
            order = rng.permutation(3)
            arrays = [np.transpose(a, order) for a in arrays]
            factor, voxel_size, psf_code = factor[order], voxel_size[order], psf_code[order]  # the anisotropy moves with the axes
        ilr, hr, *rest = (np.ascontiguousarray(a, dtype=np.float32) for a in arrays)
        return ilr, hr, (rest[0] if rest else None), factor, voxel_size, psf_code

    def _pair_patch(self, vol: TrainingVolume, rng: np.random.Generator):
        """A patch of a real pair: the same box of its LR (on the HR grid) and HR images."""
        p = self.cfg.patch
        centre = vol.centres[rng.integers(len(vol.centres))]
        start = np.clip(centre - p // 2, 0, np.maximum(np.array(vol.data.shape) - p, 0))
        box = tuple(slice(s, s + p) for s in start)
        ilr, hr = pad_to(vol.ilr[box], p), pad_to(vol.data[box], p)
        if "intensity" in self.cfg.augment:  # one mapping for both: the pair stays a pair
            params = draw_intensity(rng)
            ilr, hr = (apply_intensity(a, params) for a in (ilr, hr))
        return self._finish([ilr, hr], np.asarray(vol.pair_factor, dtype=np.float64), vol.voxel_size, rng)

    def batch(self, rng: np.random.Generator, iteration: int = 0, indices=None):
        """``(inputs (B, C, p, p, p), targets (B, 1, p, p, p))`` as numpy arrays; channels as
        in :mod:`mrsr_cli.models.recnn` (ILR, factor maps, voxel-size maps, PSF maps, reference).  Without ``indices``, the
        ``cfg.batch`` patches come one after another from ``rng``; with them (distributed
        training), patch ``i`` comes from ``default_rng([seed, iteration, i])``, the same in any
        process."""
        from mrsr_cli.models.channels import ArrayField, network_inputs

        if indices is None:
            draws = (self.patch(rng, iteration) for _ in range(self.cfg.batch))
        else:
            draws = (self.patch(np.random.default_rng([self.cfg.seed, iteration, i]), iteration) for i in indices)
        params = self.cfg.model_params()  # the channel order is the engine's: one definition
        inputs, targets = [], []
        for ilr, hr, ref, factor, voxel_size, psf_code in draws:
            sources = network_inputs(params, ilr.shape, ArrayField(ilr), factor,
                                     ArrayField(ref) if ref is not None else None, voxel_size=voxel_size, psf=psf_code)
            whole = tuple(slice(0, n) for n in ilr.shape)
            inputs.append(np.stack([source.read(whole) for source in sources]))
            targets.append(hr[None])
        return np.stack(inputs), np.stack(targets)


def resampled_patch(vol: TrainingVolume, centre, size: int, voxel_size) -> tuple:
    """``(hr, reference or None, tissue or None)``: ``size``³ voxels of ``voxel_size`` mm centred on
    the voxel ``centre`` of ``vol``, cubic spline (linear for tissue maps) from its own grid, zero
    outside it.  Finer than the source, the patch is as smooth as the source; coarser, it is
    blurred to its voxel first, like any acquisition: a block mean over the integer part of the
    step (cheap, and it shrinks what the spline reads), then a Gaussian for the rest of a
    FWHM of one new voxel."""
    from scipy import ndimage

    from mrsr_cli.degrade.observation import apply_psf

    src_vox = np.asarray(vol.voxel_size, dtype=np.float64)
    step = np.asarray(voxel_size, dtype=np.float64) / src_vox  # source voxels per new voxel
    block = np.maximum(np.floor(step + 1e-6).astype(int), 1)
    reach = np.ceil(step * size / 2).astype(int) + 4 + block
    centre = np.asarray(centre)
    box = tuple(slice(max(0, c - r), min(n, c + r + 1)) for c, r, n in zip(centre, reach, vol.data.shape))
    start = np.array([b.start for b in box])
    # block k of a reduced axis averages source voxels start + k·b ... start + k·b + b − 1 (centre + (b − 1)/2)
    first = (centre - (size - 1) / 2 * step) - start  # source coordinate of output voxel 0, within the box
    offset = (first - (block - 1) / 2) / block
    matrix = step / block

    def reduce(a):
        for axis, b in enumerate(block):
            if b > 1:
                n = a.shape[axis] // b * b
                a = np.take(a, np.arange(n), axis=axis)
                a = a.reshape(a.shape[:axis] + (n // b, b) + a.shape[axis + 1:]).mean(axis=axis + 1)
        return a.astype(np.float32)

    def take(a, order):
        return ndimage.affine_transform(reduce(a), matrix, offset=offset, output_shape=(size,) * 3, order=order,
                                        mode="constant", cval=0.0, output=np.float32)

    source = reduce(vol.data[box])
    rest = np.sqrt(np.maximum(np.asarray(voxel_size) ** 2 - (src_vox * block) ** 2, 0.0))  # FWHM left after the block mean
    if (rest > src_vox * block).any():
        source = apply_psf(source, src_vox * block, rest)
    hr = np.clip(ndimage.affine_transform(source, matrix, offset=offset, output_shape=(size,) * 3, order=3,
                                          mode="constant", cval=0.0, output=np.float32), 0, None)
    ref = np.clip(take(vol.reference[box], 3), 0, None) if vol.reference is not None else None
    tissue = np.stack([np.clip(take(t[box], 1), 0, 1) for t in vol.tissue]) if vol.tissue is not None else None
    return hr, ref, tissue
