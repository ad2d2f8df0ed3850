"""Every knob of a training run (:class:`TrainConfig`), its validation, and the architecture's parameters.

A configuration is what recipes (TOML), ``--dry-run --json`` and the model's metadata hold;
:meth:`TrainConfig.validated` is where each training setting is checked, once, with a message
that names it.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, asdict, dataclass, field, fields

from mrsr_cli.errors import UsageError
from mrsr_cli.models.channels import REFERENCE_ENCODINGS
from mrsr_cli.training.losses import parse_loss
from mrsr_cli.values import check_number

AUGMENTATIONS = ("flip", "permute", "intensity", "noise", "bias", "affine", "sharpness", "detail", "psf")
PAIR_AUGMENTATIONS = ("flip", "permute", "intensity")  # those that apply to an LR/HR pair alike
DEGRADATIONS = ("simulated", "low-field")
# `psf` augmentation: the LR PSF's shape (named here, not read from the PSF table, so that a shape
# added there does not change what a recorded recipe draws) ...
PSF_SHAPES = ("gaussian", "box")
PSF_FWHM_RANGE = (0.5, 1.25)  # ... and its FWHM, in LR voxels (simulate's default is 1)
# With --psf-input the network is told the PSF, so the draw can reach plain subsampling (below one
# HR voxel nothing is blurred), and one patch in PSF_SIMULATE_FRACTION keeps simulate's PSF exactly.
PSF_INPUT_FWHM_RANGE = (0.25, 1.5)
PSF_SIMULATE_FRACTION = 1 / 3
# ... and validation scores each factor also at a PSF of half simulate's FWHM (the channels told),
# so the best epoch reflects what the PSF channels do, not only simulate's PSF.
VAL_PSF_SCALES = (1.0, 0.5)
# `kspace_fraction`: that fraction of the `psf` augmentation's LR patches is a k-space truncation (a
# scanner's lower resolution, issue 33) with one of these apodisation windows, drawn uniformly.
KSPACE_WINDOWS = ("none", "tukey", "hamming", "hann")


PRECISIONS = ("auto", "fp32", "bf16")  # fp16 training would need loss scaling: not offered


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
    kspace_fraction: float = 0.0  # with the psf augmentation: this fraction of LR patches by k-space truncation
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
    contrast: str | None = None  # the training images' contrast (BIDS suffix, e.g. T2w); default: read from their names
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
        _check_types(values)
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
        if self.scale_range is not None and not (len(self.scale_range) == 2
                                                 and 1.0 <= self.scale_range[0] <= self.scale_range[1] <= MAX_FACTOR):
            raise UsageError(f"--scale-range (scale_range) needs 1 <= LO <= HI <= {MAX_FACTOR:g}")
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
            check_number(getattr(self, key), _flag(key), lo=lo, integer=True)
        check_number(self.seed, "--seed", lo=0, integer=True)
        if self.threads is not None:
            check_number(self.threads, "--threads", lo=1, integer=True)
        check_number(self.unit_fraction, "--unit-fraction", lo=0, hi=1)
        check_number(self.kspace_fraction, "--kspace-fraction", lo=0, hi=1)
        if self.kspace_fraction and ("psf" not in self.augment or self.slice_thickness is not None or self.pairs):
            raise UsageError("--kspace-fraction needs the psf augmentation and simulated training without --slice-thickness")
        if self.unit_fraction == 1:
            raise UsageError("--unit-fraction must be < 1 (some patches must be upscaled)")
        check_number(self.lr, "--lr", lo=0, lo_open=True)
        for key in ("max_minutes", "slice_thickness", "field_strength", "source_snr"):
            if getattr(self, key) is not None:
                check_number(getattr(self, key), _flag(key), lo=0, lo_open=True)
        check_number(self.source_field, "--source-field", lo=0, lo_open=True, unit="T")
        if self.reference_encoding not in REFERENCE_ENCODINGS:
            raise UsageError(f"reference encoding must be one of {', '.join(REFERENCE_ENCODINGS)}, got {self.reference_encoding!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
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


def _check_types(values: dict) -> None:
    """A :class:`UsageError` for a setting whose value is not of its default's type (a recipe's
    ``epochs = "3"``); ``None`` stands for "not set" wherever the default is ``None``."""
    for f in fields(TrainConfig):
        value = values.get(f.name)
        kind = type(f.default) if f.default is not MISSING and f.default is not None else None
        if value is None or kind not in (int, float, bool, str):
            continue
        wanted = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, wanted):
            described = {float: "a number", int: "an integer", bool: "true or false", str: "text"}[kind]
            raise UsageError(f"{f.name} must be {described}, got {value!r}")


def _flag(key: str) -> str:
    """How the user gave a setting: its flag (``--patches-per-epoch``; a recipe key reads the same)."""
    return "--" + key.replace("_", "-")


def complete_arch_params(arch: str, given: dict) -> dict:
    """``given`` over the architecture's training defaults (class attribute ``training_defaults``,
    e.g. ReCNN's CPU-sized 10 × 32) over its constructor defaults; the common keywords excluded.

    >>> complete_arch_params("recnn", {"layers": 4})
    {'layers': 4, 'filters': 32, 'kernel': 3, 'residual': True}
    """
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
