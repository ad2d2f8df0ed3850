"""Training loop (Pham et al. 2019 §2-4): patches, on-the-fly LR simulation, Adam, checkpoints.

Read top to bottom: :class:`TrainConfig` (every knob, recorded in the model metadata),
:class:`PatchSampler` (HR crop → observation model → spline back = ILR input Z; one random
scale factor per patch, given to the network as constant channels unless ``--blind``), then
the loss expression (:mod:`mrsr_cli.training.losses`; ``psnr``: per-patch dB gain over the ILR input) and :func:`train`
(Adam, optional step decay, validation with the engine at one or more factors, best-model
keeping, checkpoints that resume to the same result).

Determinism: patch batch ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` and the
weights are initialised from ``torch.manual_seed(seed)``, so a resumed run repeats exactly
what the uninterrupted one would have done (the ``affine`` warps are drawn from
``[seed, 7, i // AFFINE_EVERY]``, so they repeat too).

Example::

    cfg = TrainConfig(inputs=["hr.nii.gz"], output="m.safetensors", arch_params={"layers": 4, "filters": 8}, epochs=1)
    train(cfg)
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from mrsr_cli import __version__
from mrsr_cli.models.channels import REFERENCE_ENCODINGS, encode_reference, psf_encoding
from mrsr_cli.training import distributed
from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.training.losses import parse_loss

log = logging.getLogger("mrsr")
AUGMENTATIONS = ("flip", "permute", "intensity", "noise", "bias", "affine", "sharpness", "detail", "psf")
PAIR_AUGMENTATIONS = ("flip", "permute", "intensity")  # those that apply to an LR/HR pair alike
DEGRADATIONS = ("simulated", "low-field")
PSF_SHAPES = ("gaussian", "box")  # `psf` augmentation: the LR PSF's shape ...
PSF_FWHM_RANGE = (0.5, 1.25)  # ... and its FWHM, in LR voxels (simulate's default is 1)
# With --psf-input the network is told the PSF, so the draw can reach plain subsampling (below one
# HR voxel nothing is blurred), and one patch in PSF_SIMULATE_FRACTION keeps simulate's PSF exactly.
PSF_INPUT_FWHM_RANGE = (0.25, 1.5)
PSF_SIMULATE_FRACTION = 1 / 3
# ... and validation scores each factor also at a PSF of half simulate's FWHM (the channels told),
# so the best epoch reflects what the PSF channels do, not only simulate's PSF.
VAL_PSF_SCALES = (1.0, 0.5)
AFFINE_EVERY = 50  # iterations between fresh random affine warps of the training volumes


# ----------------------------------------------------------------------------- configuration
# Fields that say where this run writes, not how the model is made: not part of a recipe.
RUN_LOCAL_FIELDS = ("output", "checkpoint", "resume", "log_file", "force", "quiet")
# Constructor keywords every architecture takes, set by the trainer rather than by --arch-param.
COMMON_MODEL_PARAMS = ("in_channels", "init", "factor_channels", "reference_encoding", "voxel_channels", "psf_channels")


@dataclass
class TrainConfig:
    """Every knob of a training run, in the form recipes (TOML) and ``--dry-run --json`` use.

    Factors are per-axis lists, ``lr_decay`` is ``[gamma, every_epochs]``, ``arch_params`` the
    architecture's own constructor keywords (completed by :meth:`validated` from the
    constructor's defaults and the class's ``training_defaults``).
    """

    inputs: list
    output: str
    arch: str = "recnn"
    arch_params: dict = field(default_factory=dict)
    init: str = "msra"
    factor_input: bool = True  # the per-axis factor as constant input channels (log2)
    scales: list = field(default_factory=lambda: [[2.0, 2.0, 2.0]])
    scale_range: list | None = None  # [lo, hi] per axis
    voxel_size_range: list | None = None  # [lo, hi] mm: each HR patch resampled to a random voxel size first
    voxel_size_input: bool = False  # the output voxel size (log2 mm per axis) as constant input channels
    coarsen_only: bool = False  # with voxel_size_range: never resample a volume finer than its own voxels
    psf_input: bool = False  # the LR PSF's width per axis (channels.psf_encoding) as constant input channels
    unit_fraction: float = 0.0
    patch: int = 25
    batch: int = 16
    patches_per_epoch: int = 3200
    epochs: int = 10
    max_minutes: float | None = None
    lr: float = 1e-4
    loss: str = "psnr"  # an expression over losses.LOSSES: "psnr" (dB gain over the ILR input), "mse" (Pham), ...
    lr_decay: list | None = None  # [gamma, every_epochs]
    augment: list = field(default_factory=lambda: ["flip", "permute", "intensity"])
    references: list | None = None
    synthetic_reference: bool = False
    reference_encoding: str = "intensity"  # channels.encode_reference: "intensity" (Pham) or "edges"
    tissue_maps: list | None = None
    slice_thickness: float | None = None  # mm, on a patch's thick axis (the PSF's FWHM there); None: the LR voxel
    slice_profile: str = "gaussian"  # through-plane PSF shape: gaussian or box
    degradation: str = "simulated"  # DEGRADATIONS: the observation model alone, or a low-field acquisition too
    field_strength: float | None = None  # tesla, low-field degradation
    source_field: float = 3.0  # tesla of the training images
    source_snr: float | None = None  # of the training images at their 99.5th percentile (lowfield.DEFAULT_SOURCE_SNR)
    pairs: list | None = None  # [[lr, hr], ...]: train on real pairs, no simulation (mrsr_cli.training.pairs)
    register_pairs: bool = False
    val_pairs: list | None = None
    val: list | None = None
    val_factors: list = field(default_factory=lambda: [[2.0, 2.0, 2.0]])  # best epoch = best mean PSNR over these
    init_from: str | None = None
    new_channels_only: bool = False  # with init_from: train only the input-channel weights this run adds
    checkpoint: str | None = None
    checkpoint_every: int = 200
    resume: str | None = None
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    threads: int | None = None
    log_file: str | None = None
    name: str | None = None
    force: bool = False
    quiet: bool = False

    @classmethod
    def from_dict(cls, values: dict, require_paths: bool = True) -> "TrainConfig":
        """A validated configuration from recipe-form values (unknown keys are usage errors).
        ``require_paths=False`` (a dry run) lets ``inputs`` and ``output`` be missing."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"unknown training setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        values = {"inputs": [], "output": None, **values}
        for required in ("inputs", "output") if require_paths else ():
            if required == "inputs" and values.get("pairs"):
                continue
            if not values.get(required):
                raise UsageError(f"no {'training images' if required == 'inputs' else 'output model file'}: "
                                 f"give {'them' if required == 'inputs' else 'it'} on the command line or as "
                                 f"{required!r} in the recipe")
        return cls(**values).validated()

    def validated(self) -> "TrainConfig":
        """This configuration with ``arch_params`` completed and the loss normalised, or a
        :class:`UsageError` naming the first bad value."""
        from mrsr_cli.data.geometry import MAX_FACTOR

        if self.output is not None and not str(self.output).endswith(".safetensors"):
            raise UsageError(f"the output model file must end with .safetensors, got {self.output!r}")
        for name in ("scales", "val_factors"):
            for f in getattr(self, name):
                if len(f) != 3 or not all(0 < float(v) <= MAX_FACTOR for v in f):
                    raise UsageError(f"{name}: each factor needs 3 values in (0, {MAX_FACTOR:g}], got {f!r}")
        if not self.scales and self.scale_range is None:
            raise UsageError("give scales or a scale range")
        if self.scale_range is not None and not (len(self.scale_range) == 2 and 1.0 <= self.scale_range[0] <= self.scale_range[1] <= 16):
            raise UsageError("the scale range needs 1 <= LO <= HI <= 16")
        if self.voxel_size_range is not None and not (len(self.voxel_size_range) == 2
                                                      and 0.1 <= self.voxel_size_range[0] <= self.voxel_size_range[1] <= 5):
            raise UsageError("the voxel size range needs 0.1 <= LO <= HI <= 5 (mm)")
        if self.new_channels_only and self.init_from is None:
            raise UsageError("--new-channels-only needs --init-from")
        if self.coarsen_only and self.voxel_size_range is None:
            raise UsageError("--coarsen-only needs --voxel-size-range")
        if self.psf_input and ("psf" not in self.augment or self.pairs):
            raise UsageError("--psf-input needs the psf augmentation and simulated training (the PSF must vary for the "
                             "network to learn from its channels)")
        if self.lr_decay is not None and not (len(self.lr_decay) == 2 and self.lr_decay[0] > 0 and int(self.lr_decay[1]) >= 1):
            raise UsageError(f"lr decay must be [gamma > 0, every >= 1 epochs], got {self.lr_decay!r}")
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise UsageError(f"unknown augmentation {', '.join(sorted(unknown))} (known: {', '.join(AUGMENTATIONS)})")
        if self.references and len(self.references) != len(self.inputs):
            raise UsageError("give one reference per training image")
        if self.references and self.synthetic_reference:
            raise UsageError("given references and synthetic references are exclusive")
        for key, lo in (("patch", 5), ("batch", 1), ("epochs", 1), ("patches_per_epoch", 1), ("checkpoint_every", 1)):
            if getattr(self, key) < lo:
                raise UsageError(f"{key.replace('_', ' ')} must be >= {lo}")
        if not 0 <= self.unit_fraction < 1:
            raise UsageError("the unit fraction must be in [0, 1)")
        if self.lr <= 0:
            raise UsageError("the learning rate must be > 0")
        if self.reference_encoding not in REFERENCE_ENCODINGS:
            raise UsageError(f"reference encoding must be one of {', '.join(REFERENCE_ENCODINGS)}, got {self.reference_encoding!r}")
        if self.init not in ("msra", "xavier"):
            raise UsageError(f"init must be msra or xavier, got {self.init!r}")
        self._validate_scenario()
        self.loss = str(parse_loss(self.loss))
        self.arch_params = complete_arch_params(self.arch, self.arch_params)
        return self

    def _validate_scenario(self) -> None:
        """Thick slices, low field and pairs: their settings and what they exclude."""
        from mrsr_cli.degrade.observation import PSFS

        if self.slice_thickness is not None and not self.slice_thickness > 0:
            raise UsageError(f"slice thickness must be > 0 mm, got {self.slice_thickness:g}")
        if self.slice_profile not in PSFS:
            raise UsageError(f"slice profile must be one of {', '.join(PSFS)}, got {self.slice_profile!r}")
        if self.degradation not in DEGRADATIONS:
            raise UsageError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got {self.degradation!r}")
        if self.degradation == "low-field":
            if self.field_strength is None:
                raise UsageError("the low-field degradation needs a field strength (tesla)")
            self.low_field()
        elif self.field_strength is not None or self.source_snr is not None:
            raise UsageError("a field strength or source SNR needs the low-field degradation")
        for name in ("pairs", "val_pairs"):
            for pair in getattr(self, name) or []:
                if len(pair) != 2:
                    raise UsageError(f"{name.replace('_', ' ')}: each pair needs an LR and an HR image, got {pair!r}")
        if self.val_pairs and not self.pairs:
            raise UsageError("validation pairs need training pairs (validate simulated training with val images)")
        if self.pairs:
            if self.inputs:
                raise UsageError("give training images or pairs, not both")
            if self.guided:
                raise UsageError("pair training is unguided: no references")
            if self.degradation != "simulated" or self.slice_thickness is not None:
                raise UsageError("pairs are real data: no simulated degradation (slice thickness, low field) applies")
            if self.init_from is None and self.tissue_maps:
                raise UsageError("tissue maps are for simulated training, not pairs")
            extra = sorted(set(self.augment) - set(PAIR_AUGMENTATIONS))
            if extra:
                raise UsageError(f"augmentation {', '.join(extra)} would change the HR image of a pair alone "
                                 f"(with pairs: {', '.join(PAIR_AUGMENTATIONS)})")
        elif self.register_pairs:
            raise UsageError("registering pairs needs pairs")

    def low_field(self):
        """The :class:`mrsr_cli.degrade.lowfield.LowField` of a low-field degradation, else ``None``."""
        if self.degradation != "low-field":
            return None
        from mrsr_cli.degrade.lowfield import DEFAULT_SOURCE_SNR, LowField

        return LowField(self.field_strength, self.source_field,
                        DEFAULT_SOURCE_SNR if self.source_snr is None else self.source_snr)

    @property
    def factor_channels(self) -> int:
        return 3 if self.factor_input else 0

    @property
    def voxel_channels(self) -> int:
        return 3 if self.voxel_size_input else 0

    @property
    def psf_channels(self) -> int:
        return 3 if self.psf_input else 0

    @property
    def guided(self) -> bool:
        """Whether the network takes a reference channel (given or synthetic references)."""
        return bool(self.references or self.synthetic_reference)

    @property
    def in_channels(self) -> int:
        """ILR image + factor channels + voxel-size channels + PSF channels + reference channel (guided)."""
        return 1 + self.factor_channels + self.voxel_channels + self.psf_channels + (1 if self.guided else 0)

    def model_params(self) -> dict:
        """Constructor keywords: the architecture's own (``arch_params``) plus the common ones."""
        return {**self.arch_params, "in_channels": self.in_channels, "init": self.init,
                "factor_channels": self.factor_channels, "reference_encoding": self.reference_encoding,
                "voxel_channels": self.voxel_channels, "psf_channels": self.psf_channels}

    def recipe(self) -> dict:
        """The configuration as a recipe: every field but where the run writes."""
        return {k: v for k, v in asdict(self).items() if k not in RUN_LOCAL_FIELDS}


def complete_arch_params(arch: str, given: dict) -> dict:
    """``given`` over the architecture's training defaults (class attribute ``training_defaults``,
    e.g. ReCNN's CPU-sized 10 × 32) over its constructor defaults; the common keywords excluded.

    >>> complete_arch_params("recnn", {"layers": 4})
    {'layers': 4, 'filters': 32, 'kernel': 3, 'residual': True}
    """
    import inspect

    from mrsr_cli.models import ARCHITECTURES, architecture_parameters

    if arch not in ARCHITECTURES:
        raise UsageError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    defaults = {k: v for k, v in architecture_parameters(arch).items() if k not in COMMON_MODEL_PARAMS}
    defaults.update(getattr(ARCHITECTURES[arch], "training_defaults", {}))
    for key in given:
        if key in COMMON_MODEL_PARAMS:
            raise UsageError(f"architecture parameter {key!r} is set by the trainer, not by hand")
        if key not in defaults:
            raise UsageError(f"architecture {arch!r} has no parameter {key!r} (known: {', '.join(sorted(defaults))})")
    params = {**defaults, **given}
    missing = [k for k, v in params.items() if v is inspect.Parameter.empty]
    if missing:
        raise UsageError(f"architecture {arch!r} needs {', '.join(missing)}")
    return params


# ----------------------------------------------------------------------------- data
@dataclass
class TrainingVolume:
    data: np.ndarray  # normalised HR image
    voxel_size: tuple
    centres: np.ndarray  # (N, 3) voxel indices inside the head
    reference: np.ndarray | None = None
    tissue: np.ndarray | None = None  # (K, ...) probability maps (synthetic references, low-field contrast)
    source: str = ""
    sha256: str = ""
    ilr: np.ndarray | None = None  # a real pair's LR image on this grid (mrsr_cli.training.pairs): no simulation
    pair_factor: np.ndarray | None = None  # that pair's LR voxel / HR voxel per axis


def pair_training_volume(pair) -> TrainingVolume:
    """A :class:`TrainingVolume` from a :class:`mrsr_cli.training.pairs.PreparedPair`: patches centred in
    the head where both images overlap."""
    from mrsr_cli.evaluation.metrics import head_mask
    from mrsr_cli.models.store import sha256_file

    centres = np.argwhere(head_mask(pair.hr) & pair.overlap)
    if centres.size == 0:
        raise MrsrError(f"pair {pair.lr_path}:{pair.hr_path}: no head voxels a patch away from the LR image's border")
    return TrainingVolume(pair.hr, pair.grid.voxel_size, centres, source=pair.hr_path, sha256=sha256_file(pair.hr_path),
                          ilr=pair.ilr, pair_factor=pair.factor)


def load_training_volume(path, reference=None, tissue_maps=None) -> TrainingVolume:
    from mrsr_cli.models.channels import normalization_scale
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.evaluation.metrics import head_mask
    from mrsr_cli.models.store import sha256_file

    vol = load_volume(path, what="training image")
    data = vol.data / normalization_scale(vol.data)
    centres = np.argwhere(head_mask(data))
    ref = None
    if reference is not None:
        rvol = load_volume(reference, what="training reference")
        if rvol.grid.shape != vol.grid.shape:
            raise MrsrError(f"reference {reference} is not on the grid of {path}; register it first (mrsr register)")
        ref = rvol.data / normalization_scale(rvol.data)
    tissue = None
    if tissue_maps:
        maps = [load_volume(p, what="tissue map").data for p in tissue_maps]
        if any(m.shape != data.shape for m in maps):
            raise MrsrError("tissue maps must be on the grid of the training image they belong to")
        tissue = np.stack([m / max(float(m.max()), 1e-6) for m in maps])
    return TrainingVolume(data, vol.grid.voxel_size, centres, ref, tissue, str(path), sha256_file(path))


# Voxels around a patch that encode_reference reads: the "edges" Gaussian derivative (σ 0.5
# voxel, truncated at 4σ) reaches 2; patch margins are at least 8.
ENCODING_RIM = 3


# Rigid MI registration of a reference of another contrast onto a x2 or x(2,2,3) input leaves
# 0.07-0.16 mm of error (benchmarks/registration_accuracy.py). A larger training shift (it was
# 0.5 voxel) teaches the network to distrust exactly the fine edges that x2 needs.
REFERENCE_SHIFT_VOXELS = 0.15


def synthetic_reference(hr: np.ndarray, tissue: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A random-contrast view of the same anatomy (domain randomisation, SynthSR-style).

    A random smooth, possibly non-monotone intensity mapping of the HR image, plus a random
    mixture of tissue probability maps when given, plus noise and a sub-voxel shift of up to
    ``REFERENCE_SHIFT_VOXELS`` per axis, the residual error of ``upscale --register``.
    """
    from scipy import ndimage

    knots = rng.uniform(0, 1, size=6)
    x = np.clip(hr, 0, 1.5)
    mapped = np.interp(x, np.linspace(0, 1.5, 6), knots).astype(np.float32) * (hr > 0.02)
    if tissue is not None:
        weights = rng.uniform(-1, 1, size=tissue.shape[0]).astype(np.float32)
        mapped = mapped + np.tensordot(weights, tissue, axes=1).astype(np.float32)
    mapped = mapped - mapped.min()
    mapped = mapped / max(float(np.percentile(mapped, 99.5)), 1e-6)
    shift = rng.uniform(-REFERENCE_SHIFT_VOXELS, REFERENCE_SHIFT_VOXELS, size=3)
    mapped = ndimage.shift(mapped, shift, order=1, mode="nearest")
    return (mapped + rng.normal(0, rng.uniform(0, 0.03), mapped.shape)).astype(np.float32)


def fine_detail(shape, rng: np.random.Generator) -> np.ndarray:
    """Random thin sheets (about a voxel thick) of random sign and contrast, to add to a normalised
    HR image.

    The templates we train on are averages of many brains and lack a single scan's fine
    structure (narrow sulci, vessels); what they keep, the LR image mostly predicts, so a guided
    network learns it can ignore its reference.  Sheets added to the target *before* the
    reference is made from it are structure that a ×2–4 LR image blurs away and only the
    reference shows.  The sheets are the zero-level surfaces of Gaussian-smoothed white noise
    (σ 1–2.5 voxels), with contrast up to 0.2 of the white-matter intensity.

    >>> d = fine_detail((32, 32, 32), np.random.default_rng(0))
    >>> d.shape, bool(np.abs(d).max() <= 0.2)
    ((32, 32, 32), True)
    """
    from scipy import ndimage

    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), rng.uniform(1.0, 2.5), mode="wrap")
    field_ /= max(float(field_.std()), 1e-6)
    sheets = np.exp(-(field_ / rng.uniform(0.1, 0.3)) ** 2)
    return (rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.2) * sheets).astype(np.float32)


def add_fine_detail(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``hr`` (normalised) with :func:`fine_detail` sheets added inside the head (> 0.02), clipped at 0."""
    return np.clip(hr + fine_detail(hr.shape, rng) * (hr > 0.02), 0, None)


def warp_volume(vol: TrainingVolume, rng: np.random.Generator) -> TrainingVolume:
    """A randomly rotated (±10° per axis) and scaled (0.9–1.1 per axis) copy of a training
    volume, about its centre, on the same voxel grid (cubic spline), with its reference and
    tissue maps: other head shapes and sizes, so that a network trained on one template
    cannot memorise its anatomy."""
    from scipy import ndimage
    from scipy.spatial.transform import Rotation

    from mrsr_cli.evaluation.metrics import head_mask

    matrix = Rotation.from_euler("xyz", rng.uniform(-10, 10, 3), degrees=True).as_matrix() @ np.diag(rng.uniform(0.9, 1.1, 3))
    centre = (np.array(vol.data.shape) - 1) / 2
    offset = centre - matrix @ centre

    def warp(a):
        return ndimage.affine_transform(a, matrix, offset=offset, order=3, mode="constant", cval=0.0, output=np.float32)

    data = np.clip(warp(vol.data), 0, None)
    ref = np.clip(warp(vol.reference), 0, None) if vol.reference is not None else None
    tissue = np.stack([np.clip(warp(t), 0, 1) for t in vol.tissue]) if vol.tissue is not None else None
    return TrainingVolume(data, vol.voxel_size, np.argwhere(head_mask(data)), ref, tissue, vol.source, vol.sha256)


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

    def lr_psf(self, rng: np.random.Generator) -> tuple[str, float]:
        """``(shape, FWHM in LR voxels)`` of a patch's LR PSF: simulate's Gaussian of one LR voxel,
        or with the ``psf`` augmentation a random one (module constants PSF_*)."""
        if "psf" not in self.cfg.augment:
            return "gaussian", 1.0
        if self.cfg.psf_input:
            if rng.random() < PSF_SIMULATE_FRACTION:
                return "gaussian", 1.0
            return PSF_SHAPES[rng.integers(len(PSF_SHAPES))], float(rng.uniform(*PSF_INPUT_FWHM_RANGE))
        # acquisitions and resampling tools differ in blur: blind to it, do not learn one
        return PSF_SHAPES[rng.integers(len(PSF_SHAPES))], float(rng.uniform(*PSF_FWHM_RANGE))

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
            hr = _pad_to(vol.data[box], size)
            ref = _pad_to(vol.reference[box], size) if vol.reference is not None else None
            if vol.tissue is not None:
                tissue = _pad_to(vol.tissue[(slice(None),) + box], size)
        if "detail" in cfg.augment:  # before the reference is made from the target: the reference shows it
            hr = add_fine_detail(hr, rng)
        if "sharpness" in cfg.augment:
            # the HR image's own sharpness varies (Gaussian σ 0-1 voxel): how blurred an input looks
            # then no longer tells the factor, and the network has to read its factor channels
            from scipy import ndimage

            hr = ndimage.gaussian_filter(hr, rng.uniform(0, 1.0), mode="nearest", output=np.float32)
        if "bias" in cfg.augment:
            hr = hr * _bias_field(hr.shape, rng)
        if "intensity" in cfg.augment:
            hr = (np.clip(hr, 0, None) ** rng.uniform(0.8, 1.25) * rng.uniform(0.85, 1.15)).astype(np.float32)
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
            psf, fwhm_scale = self.lr_psf(rng)
            ilr = lowres_on_hr_grid(source, voxel_size, factor, psf=psf, noise_sigma=noise, rng=rng,
                                    slice_thickness=cfg.slice_thickness, slice_profile=cfg.slice_profile,
                                    fwhm_scale=fwhm_scale)
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
        ilr, hr = _pad_to(vol.ilr[box], p), _pad_to(vol.data[box], p)
        if "intensity" in self.cfg.augment:  # one mapping for both: the pair stays a pair
            gamma, scale = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.15)
            ilr, hr = ((np.clip(a, 0, None) ** gamma * scale).astype(np.float32) for a in (ilr, hr))
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


def _pad_to(a: np.ndarray, size: int) -> np.ndarray:
    pads = [(0, 0)] * (a.ndim - 3) + [(0, max(0, size - n)) for n in a.shape[-3:]]
    return np.pad(a, pads) if any(p[1] for p in pads) else a


def _bias_field(shape, rng: np.random.Generator) -> np.ndarray:
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    field_ = sum(rng.normal(0, 0.1) * g for g in grids) + sum(rng.normal(0, 0.05) * g * g for g in grids)
    return np.exp(field_).astype(np.float32)


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, net, optimizer, state: dict, loss_state: dict | None = None) -> None:
    """Weights, Adam moments, stateful loss terms and loop state in one safetensors file (no pickle)."""
    import torch
    from safetensors.torch import save_file

    from mrsr_cli.data.io import atomic_write

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    for name, module in (loss_state or {}).items():
        tensors.update({f"loss.{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for k, v in state.pop("best_weights", {}).items():
        tensors[f"best.{k}"] = v.detach().cpu().contiguous()
    for i, s in optimizer.state_dict()["state"].items():
        for key, value in s.items():
            tensors[f"optim.{i}.{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu().contiguous()
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={"mrsr-checkpoint": json.dumps(state)}))


def load_checkpoint(path, net, optimizer, loss_state: dict | None = None) -> tuple[dict, dict]:
    """Restore weights, stateful loss terms and Adam state; returns ``(loop state, best weights)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise MrsrError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:
        raise MrsrError(f"cannot read checkpoint {path}: {exc}") from None
    if "mrsr-checkpoint" not in meta:
        raise MrsrError(f"{path} is not an mrsr training checkpoint")
    state = json.loads(meta["mrsr-checkpoint"])
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for name, module in (loss_state or {}).items():
            prefix = f"loss.{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    except RuntimeError:
        raise MrsrError(f"checkpoint {path} does not match the requested architecture") from None
    opt_state = optimizer.state_dict()
    restored = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, i, name = key.split(".", 2)
            restored.setdefault(int(i), {})[name] = value
    opt_state["state"] = restored
    optimizer.load_state_dict(opt_state)
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    return state, best


# ----------------------------------------------------------------------------- validation
def validate(net, volumes: list, factors: list, precision: str, ensemble: int = 1, gather=None,
             low_field=None, psf_scales=(1.0,)) -> tuple[float, float, list]:
    """Mean PSNR (head mask) of the network and of spline on the validation volumes, each
    simulated at each of ``factors`` (as a ``low_field`` scan when given: its noise, seeded)
    and, for each factor, with a Gaussian PSF of each of ``psf_scales`` LR voxels (1: simulate's;
    a model with PSF channels is told it), and the gains per factor and PSF (dB, averaged over
    volumes; factor-major).
    ``ensemble``: flip self-ensemble passes, as ``upscale --ensemble``.  ``gather`` (distributed
    training): each process scores its share of the volumes and ``gather`` collects every
    process's scores before they are averaged."""
    from mrsr_cli.models.channels import ArrayField, network_inputs
    from mrsr_cli.infer.tiling import EngineOptions, run_self_ensemble
    from mrsr_cli.data.interpolate import make_resampler
    from mrsr_cli.evaluation.metrics import head_mask, psnr
    from mrsr_cli.degrade.simulate import simulate_lowres

    net_psnr, spline_psnr = [], []
    for hr, grid, ref in volumes:
        mask = head_mask(hr)
        # the reference does not depend on the factor: encode it once per volume
        encoded = ArrayField(encode_reference(ref, net.params.get("reference_encoding", "intensity"))) if ref is not None else None
        for factor, scale in ((f, s) for f in factors for s in psf_scales):
            fwhm = None if scale == 1.0 else tuple(np.asarray(grid.voxel_size) * np.asarray(factor, dtype=float) * scale)
            lr, lr_grid, _ = simulate_lowres(hr, grid, factor=factor, fwhm=fwhm, low_field=low_field, seed=0)
            resampler = make_resampler(lr, lr_grid, grid, order=3)
            spline = resampler.full()
            channels = network_inputs(net.params, grid.shape, resampler, factor, encoded, voxel_size=grid.voxel_size,
                                      psf=psf_encoding([scale] * 3, ("gaussian",) * 3, factor))
            out, _ = run_self_ensemble(net, lambda box: np.stack([c.read(box) for c in channels]), grid.shape,
                                       EngineOptions(device=str(next(net.parameters()).device.type), precision=precision,
                                                     progress=False, ensemble=ensemble))
            net_psnr.append(psnr(hr, out, mask))
            spline_psnr.append(psnr(hr, spline, mask))
    if gather is not None:
        shares = gather((net_psnr, spline_psnr))
        net_psnr = [v for share in shares for v in share[0]]
        spline_psnr = [v for share in shares for v in share[1]]
    gains = (np.array(net_psnr) - np.array(spline_psnr)).reshape(-1, len(factors) * len(psf_scales)).mean(axis=0)
    return float(np.mean(net_psnr)), float(np.mean(spline_psnr)), [round(float(g), 3) for g in gains]


def validate_pairs(net, pairs: list, precision: str, gather=None) -> tuple[float, float, list]:
    """Mean PSNR (HR head mask, inside the LR field of view) of the network on held-out real
    pairs (:class:`mrsr_cli.training.pairs.PreparedPair`) and of their spline-interpolated LR images, and
    the gain per pair (dB)."""
    from mrsr_cli.models.channels import ArrayField, network_inputs
    from mrsr_cli.evaluation.metrics import head_mask, psnr
    from mrsr_cli.infer.tiling import EngineOptions, run_self_ensemble

    net_psnr, spline_psnr = [], []
    for pair in pairs:
        mask = head_mask(pair.hr) & pair.overlap
        channels = network_inputs(net.params, pair.hr.shape, ArrayField(pair.ilr), pair.factor, voxel_size=pair.grid.voxel_size)
        out, _ = run_self_ensemble(net, lambda box: np.stack([c.read(box) for c in channels]), pair.hr.shape,
                                   EngineOptions(device=str(next(net.parameters()).device.type), precision=precision,
                                                 progress=False, ensemble=1))
        net_psnr.append(psnr(pair.hr, out, mask))
        spline_psnr.append(psnr(pair.hr, pair.ilr, mask))
    if gather is not None:
        shares = gather((net_psnr, spline_psnr))
        net_psnr = [v for share in shares for v in share[0]]
        spline_psnr = [v for share in shares for v in share[1]]
    return float(np.mean(net_psnr)), float(np.mean(spline_psnr)), [round(a - b, 3) for a, b in zip(net_psnr, spline_psnr)]


def _psf_record(cfg: TrainConfig) -> str:
    """How the training inputs were made, in words (the model metadata's ``psf``)."""
    if cfg.pairs:
        return "none: real LR/HR pairs"
    from mrsr_cli.methods.consistency import SIMULATE_PSF_RECORD

    text = SIMULATE_PSF_RECORD
    if "psf" in cfg.augment:
        low, high = PSF_INPUT_FWHM_RANGE if cfg.psf_input else PSF_FWHM_RANGE
        text = f"gaussian or box, FWHM {low:g}-{high:g} LR voxels"
        if cfg.psf_input:
            text += f" (simulate's Gaussian of one voxel in one patch of {round(1 / PSF_SIMULATE_FRACTION)}), given as input"
    if cfg.slice_thickness is not None:
        text += f"; on a thick axis FWHM = slice thickness {cfg.slice_thickness:g} mm, {cfg.slice_profile} profile"
    if cfg.degradation == "low-field":
        text += f"; low field {cfg.field_strength:g} T from {cfg.source_field:g} T"
    return text


def add_input_channels(net, arch: str, params: dict, channels: int, insert_at: int | None = None):
    """Same network with more input channels inserted at ``insert_at`` (default: after the
    existing ones); new channels start with zero weights, so the result is exactly the old model
    until training teaches it to use the new input (transfer learning, Pham §6).  Channel order:
    see :mod:`mrsr_cli.models.recnn`; ``params`` are the new model's parameters except
    ``in_channels``, which still gives the old count."""
    import torch

    from mrsr_cli.models import build_model

    old = int(params.get("in_channels", 1))
    at = old if insert_at is None else insert_at
    bigger = build_model(arch, {**params, "in_channels": channels})
    state = net.state_dict()
    first = next(k for k in state if k.endswith("weight"))
    with torch.no_grad():
        weight = torch.zeros_like(bigger.state_dict()[first])
        weight[:, :at] = state[first][:, :at]
        weight[:, at + channels - old :] = state[first][:, at:]
        state[first] = weight
    bigger.load_state_dict(state)
    return bigger


def train_new_channels_only(net, added) -> None:
    """Freeze ``net`` except the first layer's weights of the input channels where ``added`` is
    true (a boolean per input channel).  Those start at zero (:func:`add_input_channels`), so on
    inputs whose new channels read 0 -- e.g. PSF channels at simulate's PSF -- the trained model
    gives exactly the starting model's output, whatever training does."""
    import torch

    first = next(p for name, p in net.named_parameters() if name.endswith("weight"))
    for p in net.parameters():
        p.requires_grad_(p is first)
    mask = torch.zeros((1, len(added)) + (1,) * (first.dim() - 2), dtype=first.dtype)
    mask[0, torch.as_tensor(np.flatnonzero(added))] = 1.0
    first.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))


# ----------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig) -> dict:
    """Train a model as configured; returns a summary dict (also logged)."""
    import torch

    from mrsr_cli.infer.device import resolve_device, resolve_precision
    from mrsr_cli.data.io import check_output_path
    from mrsr_cli.models import build_model
    from mrsr_cli.models.store import load_model, save_model

    pair_paths = [p for pair in (cfg.pairs or []) + (cfg.val_pairs or []) for p in pair]
    check_output_path(cfg.output, list(cfg.inputs) + pair_paths, cfg.force, suffixes=(".safetensors",))
    ckpt_path = Path(cfg.checkpoint or str(cfg.output).removesuffix(".safetensors") + ".ckpt.safetensors")
    log_path = Path(cfg.log_file or str(cfg.output).removesuffix(".safetensors") + ".log.jsonl")
    ddp = distributed.detect()
    if cfg.batch % ddp.world_size:
        raise UsageError(f"the batch of {cfg.batch} patches does not split evenly over {ddp.world_size} processes; "
                         f"give a multiple of {ddp.world_size}")
    device = distributed.start(ddp, resolve_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    per_rank = cfg.batch // ddp.world_size
    my_patches = range(ddp.rank * per_rank, (ddp.rank + 1) * per_rank)

    # -- data
    refs = cfg.references or [None] * len(cfg.inputs)
    volumes = [load_training_volume(p, r, cfg.tissue_maps if i == 0 else None) for i, (p, r) in enumerate(zip(cfg.inputs, refs))]
    if cfg.pairs:
        from mrsr_cli.training.pairs import prepare_pair

        pairs = [prepare_pair(lr, hr, register=cfg.register_pairs, patch=cfg.patch, threads=cfg.threads) for lr, hr in cfg.pairs]
        volumes = [pair_training_volume(pair) for pair in pairs]
        val_pairs = [prepare_pair(lr, hr, register=cfg.register_pairs, patch=0, threads=cfg.threads) for lr, hr in cfg.val_pairs or []]
    sampler = PatchSampler(volumes, cfg)
    val_volumes = []
    for p in cfg.val or []:
        from mrsr_cli.models.channels import normalization_scale
        from mrsr_cli.data.io import load_volume

        v = load_volume(p, what="validation image")
        ref = None
        if cfg.guided:  # validate guided models with a synthetic reference of the val image
            ref = synthetic_reference(v.data / normalization_scale(v.data), None, np.random.default_rng([cfg.seed, 999]))
        val_volumes.append((v.data / normalization_scale(v.data), v.grid, ref))

    # -- model and optimiser
    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        from mrsr_cli.models.zoo import resolve_model

        init_path, init_name = resolve_model(cfg.init_from)
        net, init_meta = load_model(init_path)
        arch, params = init_meta["architecture"], dict(init_meta["params"])
        added = np.zeros(int(params.get("in_channels", 1)), bool)  # which input channels this run adds
        # constant-map channels, in channel order (after the image, before any reference): a model
        # that has them must keep them; a run that wants them adds them with zero weights
        preceding = 1
        for key, wanted, refusal, what in (
                ("factor_channels", cfg.factor_input, "takes the scale factor as input; it cannot train blind", "factor"),
                ("voxel_channels", cfg.voxel_size_input, "takes the voxel size as input; train with --voxel-size-input",
                 "voxel-size"),
                ("psf_channels", cfg.psf_input, "takes the input PSF as input; train with --psf-input", "PSF")):
            if params.get(key, 0) and not wanted:
                raise UsageError(f"starting model {init_name} {refusal}")
            if wanted and not params.get(key, 0):
                net = add_input_channels(net, arch, {**params, key: 3}, int(params.get("in_channels", 1)) + 3, insert_at=preceding)
                added = np.insert(added, preceding, [True] * 3)
                params = dict(net.params)
                log.info("--init-from %s: added 3 zero-initialised %s channels", init_name, what)
            preceding += int(params.get(key, 0))
        have = int(params.get("in_channels", 1))
        if have > cfg.in_channels:
            raise UsageError(f"starting model {init_name} has {have} input channels, training needs {cfg.in_channels}")
        if have < cfg.in_channels:
            net = add_input_channels(net, arch, {**params, "reference_encoding": cfg.reference_encoding}, cfg.in_channels)
            added = np.append(added, [True] * (cfg.in_channels - have))
            params = dict(net.params)
            log.info("--init-from %s: added %d zero-initialised reference channel(s)", init_name, cfg.in_channels - have)
        elif cfg.guided and params.get("reference_encoding", "intensity") != cfg.reference_encoding:
            raise UsageError(f"starting model {init_name} reads its reference as {params.get('reference_encoding', 'intensity')!r}, "
                             f"not {cfg.reference_encoding!r}")
        if cfg.new_channels_only:
            if not added.any():
                raise UsageError(f"--new-channels-only: this run adds no input channel to {init_name}")
            train_new_channels_only(net, added)
            log.info("--new-channels-only: training the first layer's weights of %d new channel(s); the rest is frozen",
                     int(added.sum()))
    else:
        arch, params = cfg.arch, cfg.model_params()
        try:
            net = build_model(arch, params)
        except ValueError as exc:
            raise UsageError(f"architecture {arch}: {exc}") from None
    net = net.to(device).to(memory_format=torch.channels_last_3d)
    # stateful loss terms (learned-sharpness filters) train with the network, in the same optimiser
    loss_expression = parse_loss(cfg.loss)
    loss_state = loss_expression.build_state(cfg.seed)
    for module in loss_state.values():
        module.setup(volumes, cfg.seed)
        module.to(device)
    extra_params = [p for module in loss_state.values() for p in module.parameters()]
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable + extra_params, lr=cfg.lr, betas=(0.9, 0.999))
    model = torch.nn.parallel.DistributedDataParallel(net) if ddp.enabled else net
    iters_per_epoch = max(1, cfg.patches_per_epoch // cfg.batch)
    total_iters = iters_per_epoch * cfg.epochs
    state = {"iteration": 0, "best_psnr": None, "best_epoch": None, "history": []}
    best_weights: dict = {}
    if cfg.resume:
        state, best_weights = load_checkpoint(cfg.resume, net, optimizer, loss_state)
        log.info("resumed from %s at iteration %d", cfg.resume, state["iteration"])

    def lr_at(iteration: int) -> float:
        if not cfg.lr_decay:
            return cfg.lr
        gamma, every = cfg.lr_decay
        return cfg.lr * gamma ** ((iteration // iters_per_epoch) // every)

    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    started = time.time()
    elapsed_before = float(state.get("elapsed", 0.0))
    window_loss, window_terms, window_patches, window_start = 0.0, {}, 0, time.perf_counter()
    log_mode = "a" if cfg.resume else "w"
    if not ddp.is_main:  # rank 0 alone writes the curve
        log_path, log_mode = Path(os.devnull), "w"
    progress = _TrainProgress(total_iters, enabled=not cfg.quiet and ddp.is_main)
    progress.update(state["iteration"], {})
    stop_reason = "completed"
    def on_sigterm(signum, frame):  # SLURM preemption / scancel: checkpoint like Ctrl-C
        raise KeyboardInterrupt

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    with open(log_path, log_mode) as log_fh:
        try:
            while state["iteration"] < total_iters:
                it = state["iteration"]
                if cfg.max_minutes and distributed.any_across(ddp, (time.time() - started) / 60 > cfg.max_minutes):
                    stop_reason = "time limit"
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(it)
                if ddp.enabled:
                    x_np, y_np = sampler.batch(None, it, indices=my_patches)
                else:
                    x_np, y_np = sampler.batch(np.random.default_rng([cfg.seed, it]), it)
                x = torch.from_numpy(x_np).to(device).to(memory_format=torch.channels_last_3d)
                y = torch.from_numpy(y_np).to(device)
                model.train()
                with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                    pred = model(x)
                loss, terms = loss_expression(pred, y, x[:, :1], {"iteration": it, "epoch": it // iters_per_epoch})
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                distributed.average_gradients(ddp, extra_params)  # DDP averages the network's
                optimizer.step()
                state["iteration"] = it + 1
                window_loss += float(loss.detach()) * per_rank
                for term, value in terms.items():
                    window_terms[term] = window_terms.get(term, 0.0) + float(value) * per_rank
                window_patches += per_rank
                if state["iteration"] % 10 == 0 or state["iteration"] == total_iters:
                    rate = ddp.world_size * window_patches / max(time.perf_counter() - window_start, 1e-9)
                    means = distributed.mean_across(ddp, [window_loss / window_patches]
                                                    + [v / window_patches for v in window_terms.values()])
                    record = {"iteration": state["iteration"], "epoch": state["iteration"] / iters_per_epoch,
                              "loss": means[0], "patches_per_s": rate, "lr": lr_at(it)}
                    if len(window_terms) > 1:  # one term is the loss itself
                        record["loss_terms"] = dict(zip(window_terms, means[1:]))
                    log_fh.write(json.dumps(record) + "\n")
                    log_fh.flush()
                    progress.update(state["iteration"], record)
                    window_loss, window_terms, window_patches, window_start = 0.0, {}, 0, time.perf_counter()
                if state["iteration"] % iters_per_epoch == 0 and (val_volumes or cfg.val_pairs):
                    net.eval()
                    # each process scores its share of the volumes (all of them without a launcher)
                    if cfg.val_pairs:
                        model_psnr, spline_psnr, gains = validate_pairs(net, val_pairs[ddp.rank::ddp.world_size], precision,
                                                                        gather=lambda obj: distributed.gather(ddp, obj))
                    else:
                        model_psnr, spline_psnr, gains = validate(net, val_volumes[ddp.rank::ddp.world_size], cfg.val_factors,
                                                                  precision, gather=lambda obj: distributed.gather(ddp, obj),
                                                                  low_field=sampler.low_field,
                                                                  psf_scales=VAL_PSF_SCALES if cfg.psf_input else (1.0,))
                    epoch = state["iteration"] // iters_per_epoch
                    record = {"epoch": epoch, "val_psnr": model_psnr, "val_psnr_spline": spline_psnr, "val_gain_per_factor": gains}
                    log_fh.write(json.dumps(record) + "\n")
                    log_fh.flush()
                    state["history"].append(record)
                    progress.update(state["iteration"], record)
                    log.info("epoch %d: val PSNR %.3f dB (spline %.3f dB; gain per factor %s dB)", epoch, model_psnr, spline_psnr, gains)
                    if state["best_psnr"] is None or model_psnr > state["best_psnr"]:
                        state["best_psnr"], state["best_epoch"] = model_psnr, epoch
                        best_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
                if state["iteration"] % cfg.checkpoint_every == 0 and ddp.is_main:
                    state["elapsed"] = elapsed_before + time.time() - started
                    save_checkpoint(ckpt_path, net, optimizer, dict(state, best_weights=best_weights), loss_state)
        except KeyboardInterrupt:
            progress.close()
            if not ddp.is_main:  # the ranks hold the same weights after every step: rank 0's checkpoint is the run's
                raise
            state["elapsed"] = elapsed_before + time.time() - started
            save_checkpoint(ckpt_path, net, optimizer, dict(state, best_weights=best_weights), loss_state)
            log.warning("interrupted at iteration %d; checkpoint saved: resume from %s (mrsr train --resume)", state["iteration"], ckpt_path)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
    progress.close()
    state["elapsed"] = elapsed_before + time.time() - started
    summary = {"output": cfg.output, "iterations": state["iteration"], "seconds": round(state["elapsed"], 1),
               "best_val_psnr": state["best_psnr"], "stopped": stop_reason, "checkpoint": str(ckpt_path), "log": str(log_path),
               "world_size": ddp.world_size, "rank": ddp.rank}
    if not ddp.is_main:  # rank 0 writes the checkpoint and the model; the others wait for it in stop()
        distributed.stop(ddp)
        return summary
    save_checkpoint(ckpt_path, net, optimizer, dict(state, best_weights=best_weights), loss_state)
    if best_weights:
        net.load_state_dict(best_weights)
    meta = {
        "name": cfg.name or Path(cfg.output).name.removesuffix(".safetensors"),
        "version": __version__,
        "architecture": arch,
        "contrasts": ["T1w"],
        "references": ["any (guided; synthetic references in training)" if cfg.synthetic_reference else "registered HR reference"] if cfg.guided else [],
        "normalization": {"method": "percentile", "percentile": 99.5, "of": "non-zero voxels of the input volume"},
        "training": {
            # the recipe, less the paths of its images (data and validation below keep their names)
            **{k: v for k, v in cfg.recipe().items() if k not in ("inputs", "references", "tissue_maps", "val", "pairs",
                                                                   "val_pairs")},
            "psf": _psf_record(cfg),
            "optimizer": "Adam(beta1=0.9, beta2=0.999)",
            "precision": precision,
            "device": str(device),
            "iterations": state["iteration"],
            "stopped": stop_reason,
            "seconds": round(state["elapsed"], 1),
            "best_val_psnr": state["best_psnr"],
            "best_epoch": state["best_epoch"],
            "data": [{"file": Path(v.source).name, "sha256": v.sha256} for v in volumes],
            "validation": [Path(p).name for p in cfg.val or []],
            **({"trained_on": "pairs", "pairs": [{"lr": Path(p.lr_path).name, "hr": Path(p.hr_path).name,
                                                  "factor": [round(float(f), 4) for f in p.factor], **p.fit} for p in pairs],
                "validation_pairs": [[Path(lr).name, Path(hr).name] for lr, hr in cfg.val_pairs or []]}
               if cfg.pairs else {"trained_on": "simulated"}),
            "init_from": cfg.init_from,
            "world_size": ddp.world_size,
        },
        "software": {"mrsr": __version__, "torch": torch.__version__},
        **({"loss_state": {name: module.metadata() for name, module in loss_state.items()}} if loss_state else {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    net = net.to("cpu").to(memory_format=torch.contiguous_format)
    save_model(cfg.output, net, meta)
    distributed.stop(ddp)
    log.info("saved %s (%d iterations, %.0f s)", cfg.output, state["iteration"], state["elapsed"])
    return summary


class _TrainProgress:
    """rich progress on a terminal; plain log lines every ~10 % otherwise (quiet if asked)."""

    def __init__(self, total: int, enabled: bool):
        from rich.progress import TextColumn, TimeRemainingColumn

        from mrsr_cli.console import ProgressBar

        self.total, self.enabled, self.last_pct = total, enabled, -1
        self.fields = {"loss": float("nan"), "rate": 0.0, "val": ""}
        self.bar = ProgressBar(
            "training", total, TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.3g}  {task.fields[rate]:.1f} patch/s {task.fields[val]}"),
            TimeRemainingColumn(), enabled=enabled, transient=False, **self.fields)

    def update(self, iteration: int, record: dict) -> None:
        if "loss" in record:
            self.fields["loss"], self.fields["rate"] = record["loss"], record["patches_per_s"]
        if "val_psnr" in record:
            self.fields["val"] = f" val {record['val_psnr']:.2f} dB"
        if self.bar.bar:
            self.bar.update(completed=iteration, **self.fields)
        elif self.enabled and "loss" in record:
            pct = int(100 * iteration / max(self.total, 1)) // 10
            if pct != self.last_pct:
                self.last_pct = pct
                log.info("iteration %d/%d loss %.4g %.1f patch/s%s", iteration, self.total, self.fields["loss"], self.fields["rate"], self.fields["val"])

    def close(self) -> None:
        self.bar.close()
