"""Every option of every subcommand, defined once.

:data:`COMMANDS` maps a subcommand to its :class:`Option` rows (name, kind, default, help,
choices, range, unit).  From them come, with no second copy anywhere:

* the typer parameters of ``mrsr SUBCOMMAND`` (:func:`signature`; ``cli.py`` writes only what a
  command does with its options),
* the Nipype input traits of :mod:`mrsr_cli.app.interfaces` (:func:`input_traits`),
* the option lists of docs/cli.md between ``<!-- options: NAME -->`` markers
  (:func:`docs_block`; ``python -m mrsr_cli.app.options docs/cli.md`` rewrites them and a test
  fails while they are stale),
* which ``upscale`` options reach the method (``to_method``: no hand-kept list of them).

This module imports neither torch nor numpy, so that ``mrsr --help`` stays instant.  The checks
of values live in the library (the verbs, the methods, ``TrainConfig``), once each, with a
message that names the option; ranges shown here are tested against the library's constants.

>>> [o.flag for o in COMMANDS["register"] if o.nipype is not None][:3]
['MOVING', 'FIXED', 'OUT']
>>> option("upscale", "order").choices, option("upscale", "order").range
(None, (1, 5))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

KINDS = ("str", "int", "float", "bool", "path", "paths", "strs", "triplet", "model", "count")


@dataclass(frozen=True)
class Option:
    """One option of a subcommand.

    ``kind``: ``str``/``int``/``float``/``bool``; ``path`` (a file), ``paths`` (repeatable, or
    several positional files), ``strs`` (repeatable text), ``triplet`` (``2`` or ``2,2,3``: one
    value or one per axis), ``model`` (a name or a ``.safetensors`` path), ``count`` (``-vv``).
    ``nipype``: the Nipype trait's metadata beyond what the row implies (its ``trait`` name when
    not ``name``, ``kind`` when it differs, ``xor``, ``requires``, ``position``...); ``None``:
    the option shapes the process, not the work (``--verbose``), and has no trait.
    """

    name: str
    kind: str
    help: str
    default: Any = None
    flag: str = ""  # default: --name-with-dashes; a positional argument's metavar
    short: str | None = None
    negative: str | None = None  # the off switch of a bool (--factor-input/--blind)
    choices: tuple | None = None
    range: tuple | None = None  # inclusive (lo, hi)
    unit: str | None = None
    positional: bool = False
    required: bool = False
    to_method: bool = False  # upscale: passed to the method when typed
    nipype: dict | None = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")
        if not self.flag:
            object.__setattr__(self, "flag", self.name.upper() if self.positional else "--" + self.name.replace("_", "-"))


# ----------------------------------------------------------------------------- shared rows
def _process_options() -> list[Option]:
    """Options every subcommand has; docs/cli.md lists them once, Nipype sets ``--force`` itself."""
    return [
        Option("force", "bool", "Overwrite an existing output.", False, short="-f", nipype={"default": True, "usedefault": True}),
        Option("verbose", "count", "More messages (repeat for debug).", 0, short="-v", nipype=None),
        Option("quiet", "bool", "Only errors.", False, short="-q", nipype=None),
        Option("debug", "bool", "Show tracebacks on error.", False, nipype=None),
        Option("json_out", "bool", "Print the result as JSON on stdout.", False, flag="--json", nipype=None),
    ]


PROCESS = {o.name for o in _process_options()}
PSF_SHAPES = ("gaussian", "box", "sinc")  # the observation model's PSFS (tested equal)
_FACTOR_XOR = ["factor", "voxel_size", "like_file"]
_SIM_XOR = ["factor", "voxel_size"]
_GPU = {"trait": "use_gpu", "kind": "bool", "argstr": "--device cuda", "default": False, "usedefault": True, "nohash": True,
        "desc": "run on the GPU"}
_THREADS = {"trait": "num_threads", "default": 1, "usedefault": True, "nohash": True}


SIMULATE = [
    Option("in_file", "path", "High-resolution NIfTI image.", positional=True, required=True, flag="IN",
           nipype={"exists": True, "mandatory": True, "position": 0}),
    Option("out_file", "path", "Low-resolution output (.nii, .nii.gz, or .mgz/.mgh as float32).", positional=True, required=True, flag="OUT",
           nipype={"position": 1, "name_source": ["in_file"], "name_template": "%s_desc-lowres", "keep_extension": True,
                   "hash_files": False}),
    Option("acquisition", "str", "How the LR image is made: psf (PSF blur then sampling, the default, what the builtin "
           "models trained on) or kspace (Cartesian k-space truncation, a magnitude image: a scanner's acquisition).",
           "psf", choices=("psf", "kspace")),
    Option("window", "str", "With --acquisition kspace: apodisation of the kept frequencies (default none).",
           choices=("none", "hann", "hamming", "tukey")),
    Option("partial_fourier", "float", "With --acquisition kspace: the fraction of k-space acquired along the second voxel "
           "axis (phase encoding), the rest zero-filled, e.g. 0.625 (5/8).", 1.0, range=(0.5, 1.0)),
    Option("bias", "float", "Smooth multiplicative bias field before the acquisition: std of its log (0: none; SynthSR "
           "draws up to 0.3); drawn from --seed.", 0.0, range=(0.0, 1.0)),
    Option("gamma", "float", "Intensity gamma before the acquisition (x -> x^gamma relative to the 99.5th percentile).",
           1.0, range=(0.25, 4.0)),
    Option("factor", "triplet", "LR voxel = F x HR voxel: '2' or '2,2,3' (floats allowed).", nipype={"xor": _SIM_XOR}),
    Option("voxel_size", "triplet", "LR voxel size in mm: '2' or '2,2,3'.", unit="mm", nipype={"xor": _SIM_XOR}),
    Option("fwhm", "triplet", "PSF FWHM in mm per axis (default: the LR voxel size).", unit="mm"),
    Option("psf", "str", "PSF shape: gaussian, box or sinc (a windowed-sinc pulse's slice profile).", "gaussian", choices=PSF_SHAPES),
    Option("noise", "float", "Rician noise sigma as a fraction of the 99.5th percentile.", 0.0, range=(0.0, 1.0)),
    Option("seed", "int", "Random seed for the noise."),
    Option("slice_thickness", "float", "Slice thickness in mm on the through-plane axis (the thickest LR voxel axis), apart "
           "from the spacing: gap or overlap.", unit="mm"),
    Option("slice_profile", "str", "Through-plane slice profile: gaussian, box or sinc (default: --psf).", choices=PSF_SHAPES,
           nipype={"requires": ["slice_thickness"]}),
    Option("field_strength", "float", "Simulate a low-field scan at this field (tesla): lower SNR and, with --tissue-map, "
           "T1 contrast.", unit="T"),
    Option("source_field", "float", "Field strength (tesla) the input was acquired at.", 3.0, unit="T",
           nipype={"requires": ["field_strength"]}),
    Option("source_snr", "float", "SNR of the input at its 99.5th percentile (default 40).",
           nipype={"requires": ["field_strength"]}),
    Option("tissue_maps", "paths", "GM, WM[, CSF] probability maps on the input's grid (repeat, in that order), for the "
           "low-field contrast.", flag="--tissue-map", nipype={"exists": True, "requires": ["field_strength"]}),
]

UPSCALE = [
    Option("in_file", "path", "Low-resolution NIfTI image.", positional=True, required=True, flag="IN",
           nipype={"exists": True, "mandatory": True, "position": 0}),
    Option("out_file", "path", "Output image (.nii, .nii.gz, or .mgz/.mgh as float32).", positional=True, required=True, flag="OUT",
           nipype={"position": 1, "name_source": ["in_file"], "name_template": "%s_desc-superres", "keep_extension": True,
                   "hash_files": False}),
    Option("factor", "triplet", "Output voxel = input voxel / F: '2' or '2,2,3'.", nipype={"xor": _FACTOR_XOR}),
    Option("voxel_size", "triplet", "Output voxel size in mm.", unit="mm", nipype={"xor": _FACTOR_XOR}),
    Option("like", "path", "Resample exactly onto this image's grid.", nipype={"trait": "like_file", "exists": True, "xor": _FACTOR_XOR}),
    Option("method", "str", "cnn (default), spline or lrtv (low-rank + TV, Shi et al. 2015).", "cnn",
           choices=("cnn", "spline", "lrtv")),  # the methods registry's names (tests/test_options.py): a Nipype Enum
    Option("order", "int", "B-spline order for spline interpolation (1-5).", 3, range=(1, 5), to_method=True),
    Option("model", "model", "Model name or .safetensors path (default: builtin).", to_method=True),
    Option("reference", "path", "Registered HR image of another contrast (see --guidance).", to_method=True,
           nipype={"trait": "reference_file", "exists": True}),
    Option("register", "bool", "Register --reference onto the input first (rigid, MI).", False, to_method=True,
           nipype={"requires": ["reference_file"]}),
    Option("mask", "path", "Brain mask (non-zero = brain; any grid, world coordinates): the network runs only there and "
           "the rest of the output is the spline interpolation.", to_method=True, nipype={"trait": "mask_file", "exists": True}),
    Option("guidance", "str", "How --reference guides: transfer (an unguided network, then the reference's detail where a "
           "local linear fit to the input explains it and beat the network one scale down; no training, any contrast), "
           "network (a guided model reads it), or auto (default: network for a guided --model, transfer otherwise).",
           choices=("auto", "network", "transfer"), to_method=True, nipype={"requires": ["reference_file"]}),
    Option("input_fwhm", "triplet", "How blurred the input is: its PSF's FWHM in mm per axis (default: the input voxel size, "
           "as mrsr simulate makes it); read by PSF-aware models and lrtv. 0: no blur beyond the voxel (plain "
           "subsampling).", unit="mm", to_method=True),
    Option("input_psf", "str", "Shape of the input's PSF: gaussian, box (a block mean) or sinc; or kspace: the input is a "
           "k-space truncation, as a scanner acquires it (no --input-fwhm); or auto (default): what the input's JSON "
           "sidecar says (dcm2niix's MRAcquisitionType: 3D is kspace, 2D a sinc slice profile of SliceThickness); "
           "without one, kspace when the default network runs and the noise in the air around the head is white "
           "(nothing filtered the image after its acquisition; not for thick slices); else gaussian.", "auto",
           choices=("auto",) + PSF_SHAPES + ("kspace",), to_method=True),
    Option("consistency", "str", "Data consistency after the network: correct the output until, blurred by the input's PSF "
           "and resampled onto the input grid, it gives back the input, to its estimated noise level (auto), never (off), "
           "or for N iterations whatever the noise. Default: auto.", to_method=True),
    Option("device", "str", "auto, cpu, cuda, cuda:N or mps.", "auto", nipype=_GPU),
    Option("precision", "str", "auto, fp32, bf16 or fp16.", "auto", choices=("auto", "fp32", "bf16", "fp16")),
    Option("tile_size", "int", "Halo tiles with N^3 cores instead of the default streamed engine (0 = the whole volume in one call).", unit="voxels"),
    Option("memory_limit", "str", "Memory budget, e.g. 4G (default: auto).", unit="bytes"),
    Option("threads", "int", "CPU threads (default: all).", nipype=_THREADS),
    Option("safety_net", "str", "When the input's PSF is not told (--input-fwhm/--input-psf): check the network one scale "
           "down on the input itself (degraded by simulate's Gaussian and by k-space truncation) and blend towards spline "
           "where it loses (auto), or not (off).", "auto", choices=("auto", "off"), to_method=True),
    Option("adapt", "int", "Experimental: fine-tune a copy of the network on the input itself for N steps first (8 "
           "patches a step; the cost is printed first), so it learns this scan's contrast, noise and scale; "
           "deterministic with --seed; nothing is saved. Thick slices learn from the in-plane axes. Measured: "
           "+0.2 dB on 4 mm slices, no gain at x2 (docs/engine.md).", to_method=True,
           range=(1, 100000)),
    Option("seed", "int", "Random seed of --adapt.", 0, to_method=True),
    Option("ensemble", "int", "Average the network over 1, 2, 4 or 8 mirrored copies (default: 2 when they take "
           "under 6 s on this machine, else 1; more: better and slower).",
           choices=(1, 2, 4, 8), to_method=True),
    Option("lrtv_iterations", "int", "LRTV: ADMM iterations (default 20).", range=(1, 1000), to_method=True),
    Option("lrtv_lambda_tv", "float", "LRTV: total-variation weight, in units of the input's 99.5th percentile "
           "(default 0.001).", range=(0.0, 10.0), to_method=True),
    Option("lrtv_lambda_rank", "float", "LRTV: low-rank (tensor nuclear norm) weight, same units (default 0.01).",
           range=(0.0, 10.0), to_method=True),
    Option("dtype", "str", "Output voxel type: float32; int16 (scaled by scl_slope/scl_inter to the output's range: "
           "half the size, rounding under 1/65535 of the range); input (the input file's type, floats as float32).",
           "float32", choices=("float32", "int16", "input")),
    Option("preview", "path", "Also write a PNG of three orthogonal slices (input vs output).",
           nipype={"trait": "preview_file", "hash_files": False}),
]

EVALUATE = [
    Option("reference", "path", "Reference (ground-truth) image.", positional=True, flag="REF",
           nipype={"trait": "reference_file", "exists": True, "position": 0, "xor": ["manifest_file"], "requires": ["in_files"]}),
    Option("tests", "paths", "One or more images to score, on the reference grid.", positional=True, flag="TEST",
           nipype={"trait": "in_files", "exists": True, "position": 1, "sep": " ", "xor": ["manifest_file"]}),
    Option("manifest", "path", "Tab-separated 'subject method reference image' table: score every row and compare the "
           "methods across subjects.", nipype={"trait": "manifest_file", "exists": True, "xor": ["reference_file", "in_files"]}),
    Option("baseline", "str", "With --manifest: the method every other is tested against.", "spline",
           nipype={"requires": ["manifest_file"]}),
    Option("plot", "path", "With --manifest: write a box plot of PSNR per method (PNG).",
           nipype={"trait": "plot_file", "requires": ["manifest_file"], "hash_files": False}),
    Option("mask", "path", "Mask image (default: head mask from the reference).", nipype={"trait": "mask_file", "exists": True}),
    Option("csv", "path", "Also write the table (one row per image) as CSV to this file.",
           nipype={"trait": "csv_file", "default": "metrics.csv", "usedefault": True, "hash_files": False}),
]

REGISTER = [
    Option("moving", "path", "Image to move (e.g. the HR reference of another contrast).", positional=True, required=True,
           flag="MOVING", nipype={"trait": "in_file", "exists": True, "mandatory": True, "position": 0}),
    Option("fixed", "path", "Fixed image that defines the target space.", positional=True, required=True, flag="FIXED",
           nipype={"trait": "fixed_file", "exists": True, "mandatory": True, "position": 1}),
    Option("out_file", "path", "MOVING resampled onto FIXED's grid (or --like).", positional=True, required=True, flag="OUT",
           nipype={"position": 2, "name_source": ["in_file"], "name_template": "%s_space-fixed", "keep_extension": True,
                   "hash_files": False}),
    Option("transform", "str", "rigid or affine.", "rigid", choices=("rigid", "affine")),
    Option("like", "path", "Resample onto this grid instead of FIXED's.", nipype={"trait": "like_file", "exists": True}),
    Option("save_transform", "path", "Write the transform (ITK .tfm text).",
           nipype={"trait": "transform_file", "name_source": ["in_file"], "name_template": "%s_xfm.tfm", "keep_extension": False,
                   "hash_files": False}),
    Option("apply", "path", "Skip the optimisation: apply this saved transform.",
           nipype={"trait": "apply_transform", "exists": True}),
    Option("threads", "int", "Threads for SimpleITK.", nipype=_THREADS),
]

TRAIN = [
    Option("in_files", "paths", "High-resolution training images (or 'inputs' in --config).", positional=True, flag="HR",
           nipype={"exists": True, "position": 0, "sep": " "}),
    Option("output", "path", "Model file to write (.safetensors).", short="-o",
           nipype={"trait": "out_file", "default": "model.safetensors", "usedefault": True, "hash_files": False}),
    Option("config", "path", "Recipe TOML file (keys as in --dry-run --json); flags given override it.",
           nipype={"trait": "config_file", "exists": True}),
    Option("config_from", "model", "Start from the recipe stored in this model (name or path)."),
    Option("dry_run", "bool", "Print the resolved configuration as JSON and exit.", False),
    Option("arch", "str", "Architecture: recnn, srcnn3d or edsr3d.", "recnn", choices=("recnn", "srcnn3d", "edsr3d"),
           nipype={"enum": False}),
    Option("arch_param", "strs", "Architecture parameter KEY=VALUE (repeatable), e.g. layers=20.",
           nipype={"trait": "arch_params"}),
    Option("layers", "int", "ReCNN: number of conv layers (default 10)."),
    Option("filters", "int", "ReCNN: filters per layer (default 32)."),
    Option("kernel", "int", "ReCNN: kernel size, odd (default 3)."),
    Option("no_residual", "bool", "Disable the residual skip (paper's ablation).", False),
    Option("init", "str", "Weight init: msra or xavier.", "msra", choices=("msra", "xavier")),
    Option("factor_input", "bool", "Give the network the per-axis factor as input channels, or train blind (paper).", True,
           negative="--blind", nipype={"xor": ["blind"], "negative": {"trait": "blind", "xor": ["factor_input"],
                                                                         "desc": "train blind to the factor (paper)"}}),
    Option("scales", "str", "Factor list, e.g. '2,2,2;2,2,3;3,3,3' (default 2).", nipype={"argstr": "--scales '%s'"}),
    Option("scale_range", "str", "Per-axis factor range lo:hi, e.g. 1.5:4."),
    Option("voxel_size_range", "str", "Resample each HR patch to a random voxel size in LO:HI mm first (scale-robust "
           "training), e.g. 0.5:1.5.", unit="mm"),
    Option("voxel_size_input", "bool", "Give the network the output voxel size (log2 mm per axis) as input channels; with "
           "--voxel-size-range it learns anatomy per scale.", False),
    Option("coarsen_only", "bool", "With --voxel-size-range: never resample a volume finer than its own voxel size (a drawn "
           "size below it is raised to it), so targets are never interpolated.", False),
    Option("psf_input", "bool", "Give the network the LR image's PSF width per axis as input channels (needs --augment "
           "...,psf): upscale --input-fwhm/--input-psf then say how blurred an input is.", False),
    Option("unit_fraction", "float", "Fraction of patches with factor 1.", 0.0),
    Option("kspace_fraction", "float", "With --augment ...,psf: this fraction of LR patches made by k-space truncation "
           "(window none, Tukey, Hamming or Hann) instead of a PSF.", 0.0),
    Option("patch", "int", "Patch edge in voxels.", 25, unit="voxels"),
    Option("batch", "int", "Patches per batch.", 16),
    Option("patches_per_epoch", "int", "Patches in one epoch.", 3200),
    Option("epochs", "int", "Number of epochs.", 10),
    Option("max_minutes", "float", "Stop (and save) after this many minutes.", unit="min"),
    Option("lr", "float", "Adam learning rate.", 1e-4),
    Option("loss", "str", "Loss expression over psnr (per-patch dB gain over the spline input), mse (paper), l1 and the DNSP "
           "priors lowrank, sharpness, learned-sharpness, e.g. 'l1+1e-5*lowrank+5e-3*sharpness'.", "psnr",
           nipype={"argstr": "--loss '%s'"}),
    Option("lr_decay", "str", "Step decay 'GAMMA@EPOCHS', e.g. 0.5@4."),
    Option("augment", "str", "Comma list of flip,permute,intensity,noise,bias,affine,sharpness,detail,psf.",
           "flip,permute,intensity"),
    Option("reference", "paths", "Registered HR reference per training image (guided).",
           nipype={"trait": "reference_files", "exists": True}),
    Option("synthetic_reference", "bool", "Guided model with domain-randomised references.", False,
           nipype={"xor": ["reference_files"]}),
    Option("reference_encoding", "str", "How a guided model reads its reference: intensity (paper) or edges (gradient "
           "magnitude, contrast-agnostic).", "intensity", choices=("intensity", "edges")),
    Option("tissue_maps", "paths", "GM/WM probability maps on the grid of the first training image, for its synthetic "
           "references and the low-field contrast.", flag="--tissue-map", nipype={"exists": True}),
    Option("slice_thickness", "float", "Thick-slice training: slice thickness in mm (PSF FWHM) on each patch's thickest LR "
           "axis (default: the slice spacing).", unit="mm"),
    Option("slice_profile", "str", "Through-plane slice profile: gaussian, box or sinc.", "gaussian", choices=PSF_SHAPES),
    Option("degradation", "str", "simulated (the observation model) or low-field (also the SNR and T1 contrast of "
           "--field-strength).", "simulated", choices=("simulated", "low-field")),
    Option("field_strength", "float", "Low-field degradation: the inputs' field (tesla).", unit="T"),
    Option("source_field", "float", "Field strength (tesla) of the training images.", 3.0, unit="T"),
    Option("source_snr", "float", "SNR of the training images at their 99.5th percentile (default 40)."),
    Option("pairs", "strs", "Train on a real pair LR:HR (repeat), or a TSV of lr/hr columns; no simulation."),
    Option("register_pairs", "bool", "Rigidly register each pair's LR onto its HR first.", False),
    Option("val_pairs", "strs", "Held-out pair(s) LR:HR or a TSV, for validation."),
    Option("val", "paths", "Validation HR image(s): PSNR per epoch, keep the best.", nipype={"trait": "val_files", "exists": True}),
    Option("val_factor", "str", "Validation factor(s), e.g. '2' or '2,2,2;1,1,4' (best epoch: best mean PSNR).", "2",
           nipype={"argstr": "--val-factor '%s'"}),
    Option("init_from", "model", "Fine-tune from this model (name or path)."),
    Option("new_channels_only", "bool", "With --init-from: train only the first-layer weights of the input channels this run "
           "adds (zero-initialised), so the model still gives the starting model's output where they read 0.", False),
    Option("checkpoint", "path", "Checkpoint file (default: OUTPUT.ckpt.safetensors).",
           nipype={"trait": "checkpoint_file", "hash_files": False}),
    Option("checkpoint_every", "int", "Checkpoint every N iterations.", 200),
    Option("resume", "path", "Resume from a checkpoint.", nipype={"trait": "resume_file", "exists": True}),
    Option("seed", "int", "Random seed (runs are reproducible).", 0),
    Option("precision", "str", "auto, fp32 or bf16.", "auto", choices=("auto", "fp32", "bf16")),
    Option("device", "str", "auto, cpu, cuda, cuda:N.", "auto", nipype=_GPU),
    Option("threads", "int", "CPU threads.", nipype=_THREADS),
    Option("log_file", "path", "JSONL curve (default: OUTPUT.log.jsonl).", flag="--log", nipype={"hash_files": False}),
    Option("name", "str", "Model name recorded in the metadata.", nipype={"trait": "model_name"}),
    Option("contrast", "str", "The training images' contrast recorded in the model (a BIDS suffix, e.g. T2w; default: read "
           "from their file names, else unknown)."),
]

FETCH_MODEL = [
    Option("names", "strs", "Model name(s) from the index.", positional=True, flag="NAME",
           nipype={"position": 0, "sep": " ", "xor": ["all_models"]}),
    Option("index", "str", "Index JSON path or URL (default: MRSR_MODEL_INDEX or builtin)."),
    Option("list_models", "bool", "List the models in the index.", False, flag="--list"),
    Option("all_models", "bool", "Fetch every model in the index.", False, flag="--all", nipype={"xor": ["names"]}),
    Option("dest", "path", "Download into this folder instead of the cache.", nipype={"kind": "directory"}),
    Option("verify", "bool", "Re-check the sha256 of cached models.", False),
    Option("allow_insecure", "bool", "Allow plain http to non-loopback hosts.", False),
    Option("timeout", "float", "Network timeout in seconds.", 30.0, unit="s"),
    Option("retries", "int", "Download attempts.", 3),
]

COMMANDS: dict[str, list[Option]] = {
    name: rows + _process_options()
    for name, rows in (("simulate", SIMULATE), ("upscale", UPSCALE), ("evaluate", EVALUATE), ("register", REGISTER),
                       ("train", TRAIN), ("fetch-model", FETCH_MODEL))
}
# Evaluate and fetch-model always print JSON for Nipype, which parses it into outputs.
NIPYPE_JSON = ("evaluate", "fetch-model")


def option(command: str, name: str) -> Option:
    """The row of option ``name`` of ``command``."""
    for row in COMMANDS[command]:
        if row.name == name:
            return row
    raise KeyError(f"mrsr {command} has no option {name!r}")


def method_options(command_options: dict) -> list[str]:
    """The names of ``upscale``'s options that are passed to the method when typed."""
    return [o.name for o in UPSCALE if o.to_method and o.name in command_options]


# ----------------------------------------------------------------------------- typer
_ANNOTATIONS = {"str": Optional[str], "int": Optional[int], "float": Optional[float], "bool": bool, "path": Optional[Path],
                "paths": Optional[List[Path]], "strs": Optional[List[str]], "triplet": Optional[str], "model": Optional[str],
                "count": int}


def metavar(row: Option) -> str | None:
    """The placeholder ``--help`` shows for an option's value: ``PATH`` for files, ``N`` for counts and
    sizes in voxels, the option's own name otherwise (``--factor FACTOR``), as FSL and ANTs write them."""
    if row.kind in ("bool", "count"):
        return None
    if row.kind in ("path", "paths"):
        return "PATH"
    if row.kind == "int":
        return "N"
    return row.name.upper()


def signature(command: str, rows: list[Option] | None = None):
    """The ``inspect.Signature`` typer builds ``mrsr COMMAND`` from: a ``ctx`` then one parameter per row."""
    import inspect

    import typer

    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    for row in rows if rows is not None else COMMANDS[command]:
        if row.positional:
            default = typer.Argument(... if row.required else row.default, help=row.help, metavar=row.flag)
        else:
            decls = [f"{row.flag}/{row.negative}" if row.negative else row.flag] + ([row.short] if row.short else [])
            default = typer.Option(row.default, *decls, help=row.help, count=row.kind == "count", metavar=metavar(row))
        params.append(inspect.Parameter(row.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                        annotation=_ANNOTATIONS[row.kind]))
    return inspect.Signature(params)


# ----------------------------------------------------------------------------- Nipype
def _argstr(row: Option, kind: str) -> str:
    if row.positional:
        return "%s"
    if kind == "bool":
        return row.flag
    fmt = {"int": "%d", "float": "%g"}.get(kind, "%s")
    return f"{row.flag} {fmt}" + ("..." if kind in ("paths", "strs") else "")


def _trait(row: Option, meta: dict):
    """The Nipype trait of ``row`` with metadata ``meta`` (the row's ``nipype`` dict less its own keys)."""
    from nipype.interfaces.base import Directory, File, InputMultiObject, traits

    kind = meta.pop("kind", row.kind)
    exists = meta.pop("exists", False)
    enum = meta.pop("enum", True)
    meta.setdefault("argstr", _argstr(row, kind))
    meta.setdefault("desc", row.help)
    default = meta.pop("default", None)
    args = () if default is None else (default,)
    if kind == "paths":
        return InputMultiObject(File(exists=exists), **meta)
    if kind == "strs":
        return traits.List(traits.Str, **meta)
    if kind == "path":
        return File(*args, exists=exists, **meta) if exists else File(*args, **meta)
    if kind == "directory":
        return Directory(**meta)
    if kind == "model":
        return traits.Either(File(exists=True), traits.Str, **meta)
    if kind == "triplet":
        return traits.List(traits.Float, minlen=1, maxlen=3, sep=meta.pop("sep", ","), **meta)
    if enum and row.choices is not None and kind in ("str", "int"):
        return traits.Enum(*row.choices, **meta)
    if row.range is not None:
        return traits.Range(*row.range, **meta)
    return {"str": traits.Str, "int": traits.Int, "float": traits.Float, "bool": traits.Bool}[kind](*args, **meta)


def input_traits(command: str, rows: list[Option] | None = None) -> dict:
    """``{trait name: trait}`` of the Nipype input spec of ``mrsr COMMAND``."""
    out = {}
    for row in rows if rows is not None else COMMANDS[command]:
        if row.nipype is None:
            continue
        meta = dict(row.nipype)
        negative = meta.pop("negative", None)
        trait_name = meta.pop("trait", row.name)
        out[trait_name] = _trait(row, meta)
        if negative is not None:  # the off switch of a bool is its own trait (--blind)
            neg = dict(negative)
            out[neg.pop("trait")] = _trait(Option(row.name, "bool", row.help, flag=row.negative), neg)
    if command in NIPYPE_JSON:
        from nipype.interfaces.base import traits

        out["json"] = traits.Bool(True, usedefault=True, argstr="--json", desc="machine output (parsed into outputs)")
    return out


# ----------------------------------------------------------------------------- docs
def _doc_value(row: Option) -> str:
    if row.kind == "bool":
        return ""
    if row.choices is not None:
        return " {" + ",".join(map(str, row.choices)) + "}"
    return " " + {"triplet": "F", "paths": "FILE", "path": "FILE", "model": "MODEL", "int": "N", "float": "X"}.get(row.kind, "TEXT")


def docs_block(command: str, rows: list[Option] | None = None) -> str:
    """The generated option list of ``mrsr COMMAND`` in docs/cli.md (process options are listed once at the top)."""
    lines = [f"<!-- options: {command} (generated from mrsr_cli/app/options.py; do not edit) -->", "",
             "| option | default | unit | meaning |", "|---|---|---|---|"]
    for row in rows if rows is not None else COMMANDS[command]:
        if row.name in PROCESS or row.positional:
            continue
        flag = f"{row.flag}/{row.negative}" if row.negative else row.flag
        names = f"`{flag}{_doc_value(row)}`" + (f", `{row.short}`" if row.short else "")
        default = "" if row.default is None or (row.kind == "bool" and row.default is False) else f"`{row.default}`"
        span = f"{row.range[0]}–{row.range[1]}" if row.range else ""
        unit = " ".join(x for x in (span, row.unit or "") if x)
        lines.append(f"| {names} | {default} | {unit} | {row.help.replace('|', '/')} |")
    lines += ["", f"<!-- /options: {command} -->"]
    return "\n".join(lines)


def rewrite_docs(text: str) -> str:
    """``text`` (docs/cli.md) with each generated block replaced by the table's current one."""
    for command in COMMANDS:
        pattern = re.compile(rf"<!-- options: {re.escape(command)} .*?<!-- /options: {re.escape(command)} -->", re.S)
        text = pattern.sub(lambda _m, c=command: docs_block(c), text)
    return text


if __name__ == "__main__":  # python -m mrsr_cli.app.options docs/cli.md
    import sys

    target = Path(sys.argv[1])
    target.write_text(rewrite_docs(target.read_text()))
