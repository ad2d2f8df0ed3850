"""Simulated low-resolution acquisitions Y = A X + N (Pham et al. 2019, eq. 1).

``A = D↓ B`` is the observation model of :mod:`mrsr_cli.degrade.observation` (PSF blur on the HR grid,
cubic B-spline sampling at the LR voxel centres of the FOV-preserving LR grid,
:func:`mrsr_cli.data.geometry.scaled_grid`).  ``N`` is optional Rician noise whose sigma is a
fraction of the image's 99.5th percentile.

Thick slices (Pham §7, clinical scans): the slice thickness is a property of its own, apart
from the slice spacing (the LR voxel size).  On the through-plane axis, the LR axis with the
largest voxel (:func:`through_plane_axis`), the PSF's FWHM is the slice thickness and its shape
the slice profile (Gaussian or box); thickness < spacing leaves a gap, > spacing an overlap.  In
plane the PSF stays the LR voxel size.  A low-field acquisition (:mod:`mrsr_cli.degrade.lowfield`)
changes T1 contrast before the blur and adds the noise of the lower SNR after it.

The same functions make training patches on the fly (:func:`lowres_on_hr_grid`), so the
network is trained on exactly the degradation that ``mrsr simulate`` writes.

The acquisition is a registry, :data:`ACQUISITIONS` (``simulate --acquisition NAME``): ``psf``,
the observation model above (the default, and what the builtin models trained on), or
``kspace``, Cartesian k-space truncation (:mod:`mrsr_cli.degrade.kspace`: the central
frequencies only, optionally apodised by ``--window``, written as a magnitude image), which is
what a scanner's lower-resolution acquisition is.

Example::

    lr, lr_grid, info = simulate_lowres(hr, hr_grid, factor=(2, 2, 3), noise=0.02, seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mrsr_cli.errors import UsageError
from mrsr_cli.values import check_number
from mrsr_cli.data.geometry import Grid, resized_grid
from mrsr_cli.data.interpolate import make_resampler
from mrsr_cli.degrade.observation import ObservationModel

THICK_AXIS_MARGIN = 1.01  # the through-plane voxel must be 1 % larger than the others


@dataclass(frozen=True)
class Acquisition:
    """How an LR image is made from an HR one: ``model(hr_grid, lr_grid, fwhm_mm, shapes, window)``
    returns a linear operator with ``forward`` and an exact ``adjoint``; ``magnitude``: the
    result is written as a magnitude image (its absolute value), as a scanner reconstructs it."""

    model: Callable
    magnitude: bool
    takes_psf: bool  # whether --fwhm, --psf and the slice options shape it
    takes_window: bool


def _kspace(hr_grid, lr_grid, fwhm_mm, shapes, window, partial_fourier=1.0):
    from mrsr_cli.degrade.kspace import KSpaceModel

    return KSpaceModel(hr_grid, lr_grid, window or "none", partial_fourier)


ACQUISITIONS: dict[str, Acquisition] = {
    "psf": Acquisition(lambda hr, lr, fwhm, shapes, window, partial_fourier=1.0: ObservationModel(hr, lr, fwhm, shapes),
                       False, True, False),
    "kspace": Acquisition(_kspace, True, False, True),
}


def through_plane_axis(voxel_size, header_axis: int | None = None) -> int:
    """The slice (through-plane) axis of an image with voxels ``voxel_size`` (mm): the NIfTI
    header's slice dimension (``dim_info``) when it names one, else the axis whose voxel is
    larger than both others.  A usage error when no axis is thicker.

    >>> through_plane_axis((0.45, 0.45, 3.0)), through_plane_axis((1, 1, 1), header_axis=1)
    (2, 1)
    """
    if header_axis is not None:
        return int(header_axis)
    vox = np.asarray(voxel_size, dtype=np.float64)
    axis = int(np.argmax(vox))
    if any(vox[axis] < THICK_AXIS_MARGIN * v for i, v in enumerate(vox) if i != axis):
        raise UsageError(f"a slice thickness needs a through-plane axis, but no voxel axis is thicker than the others "
                         f"({', '.join(f'{v:g}' for v in vox)} mm)")
    return axis


def check_simulation(*, fwhm=None, psf: str = "gaussian", noise: float = 0.0, slice_thickness: float | None = None,
                     slice_profile: str | None = None, seed: int | None = None, acquisition: str = "psf",
                     window: str | None = None, partial_fourier: float = 1.0, bias: float = 0.0,
                     gamma: float = 1.0) -> None:
    """A :class:`~mrsr_cli.errors.UsageError` naming the first bad setting of a simulation (``mrsr simulate``'s flags).

    >>> check_simulation(noise=2.0)
    Traceback (most recent call last):
    ...
    mrsr_cli.errors.UsageError: --noise must be in [0, 1] (a fraction of the 99.5th percentile), got 2.0
    """
    from mrsr_cli.degrade.psf import PSFS

    for name, value in (("--psf", psf), ("--slice-profile", slice_profile or psf)):
        if value not in PSFS:
            raise UsageError(f"{name} must be one of {', '.join(PSFS)}, got {value!r}")
    if slice_profile is not None and slice_thickness is None:
        raise UsageError("--slice-profile needs --slice-thickness")
    if slice_thickness is not None and not slice_thickness > 0:
        raise UsageError(f"--slice-thickness must be > 0 mm, got {slice_thickness:g}")
    if not 0 <= noise <= 1:
        raise UsageError(f"--noise must be in [0, 1] (a fraction of the 99.5th percentile), got {noise}")
    if fwhm is not None and any(float(v) < 0 for v in fwhm):
        raise UsageError("--fwhm values must be >= 0")
    if seed is not None:
        check_number(seed, "--seed", lo=0, integer=True)
    if acquisition not in ACQUISITIONS:
        raise UsageError(f"--acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}")
    kind = ACQUISITIONS[acquisition]
    if not kind.takes_psf:
        given = [flag for flag, value in (("--fwhm", fwhm), ("--slice-thickness", slice_thickness),
                                          ("--slice-profile", slice_profile)) if value is not None]
        if psf != "gaussian":
            given.insert(0, "--psf")
        if given:
            raise UsageError(f"{given[0]} does not apply to --acquisition {acquisition} (its blur is the k-space window's)")
    from mrsr_cli.degrade.intensity import check_intensity
    from mrsr_cli.degrade.kspace import PARTIAL_FOURIER_RANGE

    check_intensity(bias, gamma)
    if partial_fourier != 1.0:
        if not kind.takes_window:
            raise UsageError(f"--partial-fourier applies to --acquisition kspace, not {acquisition}")
        if not PARTIAL_FOURIER_RANGE[0] <= partial_fourier <= PARTIAL_FOURIER_RANGE[1]:
            raise UsageError(f"--partial-fourier must be in [{PARTIAL_FOURIER_RANGE[0]:g}, {PARTIAL_FOURIER_RANGE[1]:g}], "
                             f"got {partial_fourier:g}")
    if window is not None:
        from mrsr_cli.degrade.kspace import WINDOWS

        if not kind.takes_window:
            raise UsageError(f"--window applies to --acquisition kspace, not {acquisition}")
        if window not in WINDOWS:
            raise UsageError(f"--window must be one of {', '.join(WINDOWS)}, got {window!r}")


def thick_slice_psf(lr_voxel_size, slice_thickness: float, slice_profile: str = "gaussian", psf: str = "gaussian",
                    axis: int | None = None) -> tuple[tuple, tuple, int]:
    """``(fwhm_mm, psf per axis, through-plane axis)`` of a thick-slice acquisition with LR voxels
    ``lr_voxel_size`` (mm; the slice spacing on the through-plane axis) and slices
    ``slice_thickness`` mm thick with profile ``slice_profile``; in plane, ``psf`` of the voxel size.

    >>> thick_slice_psf((0.45, 0.45, 3.0), 2.0, "box")
    ((0.45, 0.45, 2.0), ('gaussian', 'gaussian', 'box'), 2)
    """
    if not slice_thickness > 0:
        raise UsageError(f"slice thickness must be > 0 mm, got {slice_thickness:g}")
    axis = through_plane_axis(lr_voxel_size) if axis is None else axis
    fwhm = [float(v) for v in lr_voxel_size]
    fwhm[axis] = float(slice_thickness)
    shapes = [psf] * 3
    shapes[axis] = slice_profile
    return tuple(fwhm), tuple(shapes), axis


def rician_noise(volume: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` (absolute units)."""
    real = volume + rng.normal(0.0, sigma, volume.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, volume.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def robust_max(volume: np.ndarray, percentile: float = 99.5) -> float:
    """The ``percentile`` of the non-zero voxels (1.0 for an all-zero image)."""
    nz = volume[volume > 0]
    if nz.size == 0:
        return 1.0
    return float(np.percentile(nz, percentile))


def simulate_lowres(
    hr: np.ndarray,
    hr_grid: Grid,
    *,
    factor=None,
    voxel_size=None,
    fwhm=None,
    psf: str = "gaussian",
    noise: float = 0.0,
    seed: int | None = None,
    slice_thickness: float | None = None,
    slice_profile: str | None = None,
    slice_axis: int | None = None,
    low_field=None,
    tissue: np.ndarray | None = None,
    acquisition: str = "psf",
    window: str | None = None,
    partial_fourier: float = 1.0,
    bias: float = 0.0,
    gamma: float = 1.0,
) -> tuple[np.ndarray, Grid, dict]:
    """Simulate a low-resolution acquisition of ``hr``.

    Give ``factor`` (LR voxel = factor × HR voxel) or ``voxel_size`` (LR voxel in mm); with
    neither (a low-field simulation only) the grid is kept.  ``fwhm`` is the PSF FWHM in mm per
    axis (default: the LR voxel size).  ``slice_thickness`` (mm) and ``slice_profile`` set the
    PSF of the through-plane axis (``slice_axis``, default :func:`through_plane_axis` of the LR
    voxels).  ``low_field`` (:class:`mrsr_cli.degrade.lowfield.LowField`) changes contrast by the
    ``tissue`` maps (K, ...) and adds the noise of its SNR.  ``noise`` is Rician sigma as a
    fraction of the HR image's 99.5th percentile.  ``acquisition`` names an entry of
    :data:`ACQUISITIONS` (``window``: its apodisation, and ``partial_fourier``: the fraction of
    k-space acquired along the second voxel axis, for ``kspace``).  ``bias`` (std of the log of a
    smooth field) and ``gamma`` change intensities before the acquisition
    (:mod:`mrsr_cli.degrade.intensity`; the bias drawn from ``seed``).  Returns the LR data, its
    grid, and a dict describing the simulation (written to the JSON sidecar).
    """
    if factor is not None and voxel_size is not None:
        raise ValueError("give one of factor or voxel_size")
    if factor is None and voxel_size is None and low_field is None:
        raise ValueError("give factor or voxel_size")
    hr_vox = np.asarray(hr_grid.voxel_size)
    if voxel_size is not None:
        lr_vox = np.asarray(voxel_size, dtype=np.float64)
    else:
        lr_vox = hr_vox * np.asarray(factor if factor is not None else (1.0, 1.0, 1.0))
    lr_grid = resized_grid(hr_grid, tuple(lr_vox))
    fwhm_mm = tuple(float(v) for v in (lr_vox if fwhm is None else fwhm))
    shapes: tuple | str = psf
    if slice_thickness is not None:
        fwhm_mm, shapes, slice_axis = thick_slice_psf(fwhm_mm, slice_thickness, slice_profile or psf, psf,
                                                      through_plane_axis(lr_vox, slice_axis))
    source = hr
    if low_field is not None and tissue is not None:
        source = hr * low_field.contrast_map(tissue)
    if gamma != 1.0 or bias > 0:
        from mrsr_cli.degrade.intensity import apply_gamma, bias_field

        if gamma != 1.0:
            source = apply_gamma(source, gamma, robust_max(hr))
        if bias > 0:  # its own stream, so that the noise of a seed stays what it was
            source = source * bias_field(source.shape, bias, np.random.default_rng(None if seed is None else [seed, 1]))
    kind = ACQUISITIONS[acquisition]
    lr = kind.model(hr_grid, lr_grid, fwhm_mm, shapes, window, partial_fourier).forward(source)
    if kind.magnitude:
        lr = np.abs(lr)
    sigma_abs = 0.0
    fraction = float(np.hypot(noise, low_field.noise_fraction() if low_field is not None else 0.0))
    if fraction > 0:
        sigma_abs = fraction * robust_max(hr)
        lr = rician_noise(lr, sigma_abs, np.random.default_rng(seed))
    info = {
        "factor": [float(v) for v in lr_vox / hr_vox],
        "input_voxel_size_mm": [float(v) for v in hr_vox],
        "output_voxel_size_mm": [float(v) for v in lr_grid.voxel_size],
        "input_shape": list(hr_grid.shape),
        "output_shape": list(lr_grid.shape),
        "acquisition": acquisition,
        **({"psf": list(shapes) if not isinstance(shapes, str) else shapes, "fwhm_mm": list(fwhm_mm)} if kind.takes_psf
           else {"window": window or "none", "partial_fourier": float(partial_fourier)}),
        **({"bias_std": float(bias)} if bias > 0 else {}),
        **({"gamma": float(gamma)} if gamma != 1.0 else {}),
        "noise_fraction": fraction,
        "noise_sigma": float(sigma_abs),
        "seed": seed,
    }
    if slice_thickness is not None:
        info.update({"slice_axis": int(slice_axis), "slice_thickness_mm": float(slice_thickness),
                     "slice_spacing_mm": float(lr_vox[slice_axis]), "slice_profile": shapes[slice_axis]})
    if low_field is not None:
        info["low_field"] = {**low_field.describe(), "tissue_maps": 0 if tissue is None else int(tissue.shape[0])}
    return lr, lr_grid, info


def training_psf(lr_voxel_size, *, psf: str = "gaussian", slice_thickness: float | None = None,
                 slice_profile: str | None = None, fwhm_scale: float | tuple = 1.0) -> tuple[tuple, tuple]:
    """``(fwhm_mm, shape per axis)`` of the PSF :func:`lowres_on_hr_grid` applies for LR voxels of
    ``lr_voxel_size`` mm: ``psf`` of FWHM ``fwhm_scale`` LR voxels (one number, or one per axis), and on a thick axis (when
    ``slice_thickness`` is given) the slice profile of :func:`thick_slice_psf`.

    >>> training_psf((2.0, 2.0, 2.0), psf="box", fwhm_scale=0.5)
    ((1.0, 1.0, 1.0), ('box', 'box', 'box'))
    >>> training_psf((2.0, 2.0, 4.0), fwhm_scale=(1.0, 1.0, 0.75))[0]
    (2.0, 2.0, 3.0)
    """
    lr_vox = np.asarray(lr_voxel_size, dtype=np.float64)
    fwhm, shapes = tuple(float(v) for v in lr_vox * np.asarray(fwhm_scale, dtype=np.float64)), (psf,) * 3
    if slice_thickness is not None and lr_vox.max() >= THICK_AXIS_MARGIN * np.sort(lr_vox)[1]:
        fwhm, shapes, _ = thick_slice_psf(fwhm, slice_thickness, slice_profile or psf, psf)
    return tuple(fwhm), tuple(shapes)


def lowres_on_hr_grid(
    hr: np.ndarray, voxel_size, factor, *, psf: str = "gaussian", noise_sigma: float = 0.0,
    rng: np.random.Generator | None = None, order: int = 3, slice_thickness: float | None = None,
    slice_profile: str | None = None, fwhm_scale: float | tuple = 1.0, acquisition: str = "psf", window: str = "none",
) -> np.ndarray:
    """Degrade ``hr`` by ``factor`` and spline it back onto its own grid (the ILR image Z).

    This is the training input: same PSF and sampling as :func:`simulate_lowres`, followed by
    the same spline upscaling as ``mrsr upscale --method spline``.  The PSF's FWHM is the LR
    voxel size times ``fwhm_scale`` (1 by default, as ``simulate``; or one per axis); ``slice_thickness`` (mm)
    applies when the LR voxel has a thick axis.  ``acquisition="kspace"``: a k-space truncation
    with apodisation ``window`` instead (:func:`_kspace_lowres_on_hr_grid`).
    """
    lr_vox = np.asarray(voxel_size) * np.asarray(factor)
    if acquisition == "kspace":
        return _kspace_lowres_on_hr_grid(hr, voxel_size, lr_vox, window, noise_sigma, rng, order)
    hr_grid = Grid(hr.shape, np.diag(list(voxel_size) + [1.0]))
    lr_grid = resized_grid(hr_grid, tuple(lr_vox))
    fwhm, shapes = training_psf(lr_vox, psf=psf, slice_thickness=slice_thickness, slice_profile=slice_profile,
                                fwhm_scale=fwhm_scale)
    lr = ObservationModel(hr_grid, lr_grid, fwhm, shapes).forward(hr)
    if noise_sigma > 0 and rng is not None:
        lr = rician_noise(lr, noise_sigma, rng)
    return make_resampler(lr, lr_grid, hr_grid, order=order).full()


def _kspace_lowres_on_hr_grid(hr: np.ndarray, voxel_size, lr_vox, window: str, noise_sigma: float,
                              rng: np.random.Generator | None, order: int) -> np.ndarray:
    """:func:`lowres_on_hr_grid` for a k-space truncation (magnitude image, then Rician noise).

    The DFT treats a patch as periodic, and the jump where its faces wrap round would ring into
    it; the patch is mirrored by half its size on every side first (the even extension, which
    wraps round without a jump), truncated, splined back and cropped."""
    from mrsr_cli.degrade.kspace import KSpaceModel

    pads = [(n // 2, n // 2) for n in hr.shape]
    padded = np.pad(np.asarray(hr, dtype=np.float32), pads, mode="symmetric")
    grid = Grid(padded.shape, np.diag(list(voxel_size) + [1.0]))
    lr_grid = resized_grid(grid, tuple(lr_vox))
    lr = np.abs(KSpaceModel(grid, lr_grid, window).forward(padded))
    if noise_sigma > 0 and rng is not None:
        lr = rician_noise(lr, noise_sigma, rng)
    ilr = make_resampler(lr, lr_grid, grid, order=order).full()
    return np.ascontiguousarray(ilr[tuple(slice(p, p + n) for (p, _), n in zip(pads, hr.shape))])
