"""The ``mrsr`` command line: a thin typer layer over the library.

Conventions shared by every subcommand: outputs are never overwritten without ``--force``;
``-v``/``-q`` set verbosity; ``--json`` prints machine-readable results on stdout while human
text goes to stderr; exit 0 = success, 1 = runtime error, 2 = usage error; errors are one
line (``--debug`` shows the traceback).  Heavy modules (torch, nibabel, SimpleITK) are
imported inside the commands so that ``mrsr --help`` is instant.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from mrsr_cli import __version__
from mrsr_cli.errors import MrsrError, UsageError

app = typer.Typer(
    name="mrsr",
    help="Brain MRI super-resolution: simulate, register, train, upscale, evaluate, fetch-model.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
log = logging.getLogger("mrsr")


# ----------------------------------------------------------------------------- plumbing
class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        sys.stderr.write(f"mrsr: {level}{record.getMessage()}\n")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    log.handlers[:] = [_StderrHandler()]
    log.setLevel(level)
    log.propagate = False


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"mrsr: error: {message}\n")
    raise typer.Exit(code)


def command(name: str, help_text: str):
    """Register a subcommand whose errors become one-line messages with exit codes 1/2."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            debug = kwargs.get("debug", False)
            _setup_logging(kwargs.get("verbose", 0) or 0, kwargs.get("quiet", False))
            try:
                return fn(*args, **kwargs)
            except typer.Exit:
                raise
            except MrsrError as exc:
                if debug:
                    raise
                _fail(str(exc).splitlines()[0], exc.exit_code)
            except KeyboardInterrupt:
                _fail("interrupted", 130)
            except MemoryError:
                if debug:
                    raise
                _fail("out of memory; try --memory-limit or a smaller --tile-size", 1)
            except Exception as exc:  # last resort: still one line, no traceback
                if debug:
                    raise
                _fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (rerun with --debug for details)", 1)

        return app.command(name, help=help_text, short_help=help_text.split(".")[0] + ".")(wrapper)

    return decorate


Force = typer.Option(False, "--force", "-f", help="Overwrite an existing output.")
Verbose = typer.Option(0, "--verbose", "-v", count=True, help="More messages (repeat for debug).")
Quiet = typer.Option(False, "--quiet", "-q", help="Only errors.")
Debug = typer.Option(False, "--debug", help="Show tracebacks on error.")
JsonOut = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mrsr {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
) -> None:
    """Brain MRI super-resolution toolkit (Pham et al. 2019 ReCNN)."""


def _print_json(payload) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _given(ctx: typer.Context, options: dict) -> dict:
    """The options typed on the command line (typer vendors click: the source is compared by name)."""
    return {k: v for k, v in options.items()
            if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}


# ----------------------------------------------------------------------------- simulate
@command("simulate", "Simulate a low-resolution acquisition (PSF blur, sampling, Rician noise) of a high-resolution image.")
def simulate_cmd(
    in_file: Path = typer.Argument(..., help="High-resolution NIfTI image."),
    out_file: Path = typer.Argument(..., help="Low-resolution output (.nii or .nii.gz)."),
    factor: Optional[str] = typer.Option(None, "--factor", help="LR voxel = F x HR voxel: '2' or '2,2,3' (floats allowed)."),
    voxel_size: Optional[str] = typer.Option(None, "--voxel-size", help="LR voxel size in mm: '2' or '2,2,3'."),
    fwhm: Optional[str] = typer.Option(None, "--fwhm", help="PSF FWHM in mm per axis (default: the LR voxel size)."),
    psf: str = typer.Option("gaussian", "--psf", help="PSF shape: gaussian or box."),
    noise: float = typer.Option(0.0, "--noise", help="Rician noise sigma as a fraction of the 99.5th percentile."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed for the noise."),
    slice_thickness: Optional[float] = typer.Option(None, "--slice-thickness", help="Slice thickness in mm on the through-plane "
                                                    "axis (the thickest LR voxel axis), apart from the spacing: gap or overlap."),
    slice_profile: Optional[str] = typer.Option(None, "--slice-profile", help="Through-plane slice profile: gaussian or box "
                                                "(default: --psf)."),
    field_strength: Optional[float] = typer.Option(None, "--field-strength", help="Simulate a low-field scan at this field "
                                                   "(tesla): lower SNR and, with --tissue-map, T1 contrast."),
    source_field: float = typer.Option(3.0, "--source-field", help="Field strength (tesla) the input was acquired at."),
    source_snr: Optional[float] = typer.Option(None, "--source-snr", help="SNR of the input at its 99.5th percentile "
                                               "(default 40)."),
    tissue_maps: Optional[list[Path]] = typer.Option(None, "--tissue-map", help="GM, WM[, CSF] probability maps on the "
                                                     "input's grid (repeat, in that order), for the low-field contrast."),
    force: bool = Force, verbose: int = Verbose, quiet: bool = Quiet, debug: bool = Debug, json_out: bool = JsonOut,
) -> None:
    from mrsr_cli.data.geometry import parse_factor, parse_triplet, parse_voxel_size
    from mrsr_cli.degrade.observation import PSFS
    from mrsr_cli.app.verbs import simulate_file

    for name, value in (("--psf", psf), ("--slice-profile", slice_profile or psf)):
        if value not in PSFS:
            raise UsageError(f"{name} must be one of {', '.join(PSFS)}, got {value!r}")
    if slice_profile is not None and slice_thickness is None:
        raise UsageError("--slice-profile needs --slice-thickness")
    if slice_thickness is not None and not slice_thickness > 0:
        raise UsageError(f"--slice-thickness must be > 0 mm, got {slice_thickness:g}")
    if not 0 <= noise <= 1:
        raise UsageError(f"--noise must be in [0, 1] (a fraction of the 99.5th percentile), got {noise}")
    fwhm_mm = parse_triplet(fwhm, "--fwhm") if fwhm is not None else None
    if fwhm_mm is not None and any(v < 0 for v in fwhm_mm):
        raise UsageError("--fwhm values must be >= 0")
    if field_strength is None or factor is not None or voxel_size is not None:  # low field alone keeps the grid
        _one_grid_option(factor, voxel_size, None, upscale=False)
    info = simulate_file(in_file, out_file, factor=parse_factor(factor) if factor is not None else None,
                         voxel_size=parse_voxel_size(voxel_size) if voxel_size is not None else None,
                         fwhm=fwhm_mm, psf=psf, noise=noise, seed=seed, slice_thickness=slice_thickness,
                         slice_profile=slice_profile, field_strength=field_strength, source_field=source_field,
                         source_snr=source_snr, tissue_maps=tissue_maps, force=force)
    if json_out:
        _print_json({"out_file": str(out_file), **info})


def _one_grid_option(factor, voxel_size, like, *, upscale: bool) -> None:
    if sum(x is not None for x in (factor, voxel_size, like)) != 1:
        raise UsageError("give exactly one of --factor, --voxel-size" + (", --like" if upscale else ""))


# ----------------------------------------------------------------------------- upscale
@command("upscale", "Super-resolve an image onto a finer grid (CNN by default, or spline).")
def upscale_cmd(
    ctx: typer.Context,
    in_file: Path = typer.Argument(..., help="Low-resolution NIfTI image."),
    out_file: Path = typer.Argument(..., help="Output image (.nii or .nii.gz)."),
    factor: Optional[str] = typer.Option(None, "--factor", help="Output voxel = input voxel / F: '2' or '2,2,3'."),
    voxel_size: Optional[str] = typer.Option(None, "--voxel-size", help="Output voxel size in mm."),
    like: Optional[Path] = typer.Option(None, "--like", help="Resample exactly onto this image's grid."),
    method: str = typer.Option("cnn", "--method", help="cnn (default), spline or lrtv (low-rank + TV, Shi et al. 2015)."),
    order: int = typer.Option(3, "--order", help="B-spline order for spline interpolation (1-5)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name or .safetensors path (default: builtin)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Registered HR image of another contrast (see "
                                             "--guidance)."),
    register: bool = typer.Option(False, "--register", help="Register --reference onto the input first (rigid, MI)."),
    guidance: Optional[str] = typer.Option(None, "--guidance", help="How --reference guides: transfer (an unguided network, "
                                           "then the reference's detail where a local linear fit to the input explains it "
                                           "and beat the network one scale down; no training, any contrast), network (a "
                                           "guided model reads it), or auto (default: network for a guided --model, "
                                           "transfer otherwise)."),
    input_fwhm: Optional[str] = typer.Option(None, "--input-fwhm", help="How blurred the input is: its PSF's FWHM in mm per "
                                             "axis (default: the input voxel size, as mrsr simulate makes it); read by "
                                             "PSF-aware models and lrtv. 0: no blur beyond the voxel (plain subsampling)."),
    input_psf: str = typer.Option("gaussian", "--input-psf", help="Shape of the input's PSF: gaussian or box (a block mean)."),
    consistency: Optional[str] = typer.Option(None, "--consistency", help="Data consistency after the network: correct the "
                                              "output until, blurred by the input's PSF and resampled onto the input grid, "
                                              "it gives back the input, to its estimated noise level (auto), never (off), or "
                                              "for N iterations whatever the noise. Default: auto."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32, bf16 or fp16."),
    tile_size: Optional[int] = typer.Option(None, "--tile-size", help="Force tile cores of N^3 voxels (0 = whole volume)."),
    memory_limit: Optional[str] = typer.Option(None, "--memory-limit", help="Memory budget, e.g. 4G (default: auto)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all)."),
    ensemble: Optional[int] = typer.Option(None, "--ensemble", help="Average the network over 1, 2, 4 or 8 mirrored copies "
                                           "(default 2; more: better and slower)."),
    lrtv_iterations: Optional[int] = typer.Option(None, "--lrtv-iterations", help="LRTV: ADMM iterations (default 20)."),
    lrtv_lambda_tv: Optional[float] = typer.Option(None, "--lrtv-lambda-tv", help="LRTV: total-variation weight, in units of the "
                                                   "input's 99.5th percentile (default 0.001)."),
    lrtv_lambda_rank: Optional[float] = typer.Option(None, "--lrtv-lambda-rank", help="LRTV: low-rank (tensor nuclear norm) "
                                                     "weight, same units (default 0.01)."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a PNG of three orthogonal slices (input vs output)."),
    force: bool = Force, verbose: int = Verbose, quiet: bool = Quiet, debug: bool = Debug, json_out: bool = JsonOut,
) -> None:
    from mrsr_cli.data.geometry import parse_factor, parse_triplet, parse_voxel_size
    from mrsr_cli.methods import METHODS, method_options
    from mrsr_cli.app.verbs import upscale_file

    given = _given(ctx, {"order": order, "model": model, "reference": reference, "register": register, "ensemble": ensemble,
                         "lrtv_iterations": lrtv_iterations, "lrtv_lambda_tv": lrtv_lambda_tv, "lrtv_lambda_rank": lrtv_lambda_rank,
                         "input_fwhm": input_fwhm, "input_psf": input_psf, "consistency": consistency,
                         "guidance": guidance})
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 1 <= order <= 5:
        raise UsageError(f"--order must be 1..5, got {order}")
    if register and reference is None:
        raise UsageError("--register needs --reference")
    if guidance is not None:
        from mrsr_cli.methods.guidance import parse_guidance

        if reference is None:
            raise UsageError(f"--guidance {parse_guidance(guidance)} needs --reference")
    accepted = method_options(method)
    for flag in given:
        if flag not in accepted:
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to --method {method}")
    from mrsr_cli.methods.lrtv import MAX_ITERATIONS, MAX_LAMBDA
    from mrsr_cli.infer.tiling import ENSEMBLE_SIZES

    if ensemble is not None and ensemble not in ENSEMBLE_SIZES:
        raise UsageError(f"--ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {ensemble}")
    if lrtv_iterations is not None and not 1 <= lrtv_iterations <= MAX_ITERATIONS:
        raise UsageError(f"--lrtv-iterations must be in 1..{MAX_ITERATIONS}, got {lrtv_iterations}")
    for flag, value in (("--lrtv-lambda-tv", lrtv_lambda_tv), ("--lrtv-lambda-rank", lrtv_lambda_rank)):
        if value is not None and not 0 <= value <= MAX_LAMBDA:
            raise UsageError(f"{flag} must be in [0, {MAX_LAMBDA:g}] (a fraction of the intensity scale), got {value}")
    from mrsr_cli.degrade.observation import PSFS

    if input_psf not in PSFS:
        raise UsageError(f"--input-psf must be one of {', '.join(PSFS)}, got {input_psf!r}")
    _one_grid_option(factor, voxel_size, like, upscale=True)
    options = dict(given)
    if consistency is not None:
        from mrsr_cli.methods.consistency import parse_mode

        parse_mode(consistency)
    if input_fwhm is not None:
        options["input_fwhm"] = parse_triplet(input_fwhm, "--input-fwhm")
        if any(v < 0 for v in options["input_fwhm"]):
            raise UsageError("--input-fwhm values must be >= 0 (mm)")
    if "order" in accepted:
        options["order"] = order
    if "engine" in accepted:
        from mrsr_cli.infer.tiling import EngineOptions

        options["engine"] = EngineOptions.from_cli(device=device, precision=precision, tile_size=tile_size,
                                                   memory_limit=memory_limit, threads=threads, progress=not quiet)
    payload = upscale_file(in_file, out_file, method=method, factor=parse_factor(factor) if factor is not None else None,
                           voxel_size=parse_voxel_size(voxel_size) if voxel_size is not None else None, like=like,
                           preview=preview, force=force, **options)
    if json_out:
        _print_json({"out_file": str(out_file), **payload})


# ----------------------------------------------------------------------------- evaluate
@command("evaluate", "PSNR and 3-D SSIM of test images against a reference, inside a head mask; or of methods across subjects.")
def evaluate_cmd(
    reference: Optional[Path] = typer.Argument(None, help="Reference (ground-truth) image."),
    tests: Optional[List[Path]] = typer.Argument(None, help="One or more images to score, on the reference grid."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Tab-separated 'subject method reference image' table: "
                                            "score every row and compare the methods across subjects."),
    baseline: str = typer.Option("spline", "--baseline", help="With --manifest: the method every other is tested against."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --manifest: write a box plot of PSNR per method (PNG)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Mask image (default: head mask from the reference)."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Also write the table (one row per image) as CSV to this file."),
    force: bool = Force, verbose: int = Verbose, quiet: bool = Quiet, debug: bool = Debug, json_out: bool = JsonOut,
) -> None:
    from mrsr_cli.evaluation.evaluate import evaluate_files, evaluate_manifest, write_box_plot, write_csv
    from mrsr_cli.data.io import check_output_path

    if manifest is None and (reference is None or not tests):
        raise UsageError("give a reference and test images, or --manifest")
    if manifest is not None and (reference is not None or tests):
        raise UsageError("give either a reference and test images or --manifest, not both")
    if plot is not None and manifest is None:
        raise UsageError("--plot needs --manifest")
    inputs = [manifest] if manifest is not None else [reference, *tests]
    if csv is not None:
        check_output_path(csv, inputs, force, suffixes=(".csv",))
    if plot is not None:
        check_output_path(plot, inputs, force, suffixes=(".png",))
    if manifest is not None:
        result = evaluate_manifest(manifest, baseline=baseline, mask=mask)
        if csv is not None:
            write_csv(csv, result["rows"])
        if plot is not None:
            write_box_plot(plot, result)
        if json_out:
            _print_json(result)
        if not quiet:
            _print_comparison(result)
        return
    rows = evaluate_files(reference, tests, mask)
    if csv is not None:
        write_csv(csv, rows)
    if json_out:
        _print_json(rows)
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"reference: {reference}")
        for col in ("image", "PSNR (dB)", "SSIM", "data range", "mask voxels"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["image"], f"{r['psnr']:.3f}", f"{r['ssim']:.4f}", f"{r['data_range']:.4g}", str(r["mask_voxels"]))
        Console(stderr=True).print(table)


def _print_comparison(result: dict) -> None:
    """People's view of a manifest comparison: mean ± sd per method, tests against the baseline, ANOVA."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"methods across subjects (baseline {result['baseline']}; p: paired t / Wilcoxon, Holm-corrected)")
    for col in ("method", "n", "PSNR (dB) mean ± sd", "SSIM mean ± sd", "ΔPSNR vs baseline", "p (t)", "p (Wilcoxon)"):
        table.add_column(col)
    def sd(value, fmt):
        return f"{value:{fmt}}" if value is not None else "–"

    for method, s in result["summary"].items():
        t = result["tests"]["psnr"].get(method, {})
        table.add_row(method, str(s["n"]), f"{s['psnr_mean']:.3f} ± {sd(s['psnr_sd'], '.3f')}",
                      f"{s['ssim_mean']:.4f} ± {sd(s['ssim_sd'], '.4f')}",
                      f"{t['mean_difference']:+.3f}" if "mean_difference" in t else "",
                      f"{t['p_t_holm']:.3g}" if "p_t_holm" in t else "", f"{t['p_wilcoxon_holm']:.3g}" if "p_wilcoxon_holm" in t else "")
    console.print(table)
    anova = result["anova"]["psnr"]
    if "skipped" not in anova:
        console.print(f"two-way ANOVA on PSNR ({anova['subjects']} subjects): method F({anova['method']['df']}, "
                      f"{anova['residual']['df']}) = {anova['method']['F']:.3g}, p = {anova['method']['p']:.3g}; subject "
                      f"F({anova['subject']['df']}, {anova['residual']['df']}) = {anova['subject']['F']:.3g}, p = {anova['subject']['p']:.3g}")
    for note in result["notes"]:
        console.print(f"note: {note}")


# ----------------------------------------------------------------------------- register
@command("register", "Rigidly or affinely register an image onto another (Mattes MI, SimpleITK) and resample it.")
def register_cmd(
    moving: Path = typer.Argument(..., help="Image to move (e.g. the HR reference of another contrast)."),
    fixed: Path = typer.Argument(..., help="Fixed image that defines the target space."),
    out_file: Path = typer.Argument(..., help="MOVING resampled onto FIXED's grid (or --like)."),
    transform: str = typer.Option("rigid", "--transform", help="rigid or affine."),
    like: Optional[Path] = typer.Option(None, "--like", help="Resample onto this grid instead of FIXED's."),
    save_transform: Optional[Path] = typer.Option(None, "--save-transform", help="Write the transform (ITK .tfm text)."),
    apply: Optional[Path] = typer.Option(None, "--apply", help="Skip the optimisation: apply this saved transform."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads for SimpleITK."),
    force: bool = Force, verbose: int = Verbose, quiet: bool = Quiet, debug: bool = Debug, json_out: bool = JsonOut,
) -> None:
    from mrsr_cli.data.register import register_files

    if transform not in ("rigid", "affine"):
        raise UsageError(f"--transform must be rigid or affine, got {transform!r}")
    result = register_files(moving, fixed, out_file, transform=transform, like=like, save_transform=save_transform,
                            apply=apply, threads=threads, force=force)
    if json_out:
        _print_json(result)


# ----------------------------------------------------------------------------- train
@command("train", "Train a super-resolution network on high-resolution images (LR inputs simulated on the fly).")
def train_cmd(
    ctx: typer.Context,
    in_files: Optional[List[Path]] = typer.Argument(None, help="High-resolution training images (or 'inputs' in --config)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Model file to write (.safetensors)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Recipe TOML file (keys as in --dry-run --json); flags given override it."),
    config_from: Optional[str] = typer.Option(None, "--config-from", help="Start from the recipe stored in this model (name or path)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved configuration as JSON and exit."),
    arch: str = typer.Option("recnn", "--arch", help="Architecture: recnn, srcnn3d or edsr3d."),
    arch_param: Optional[List[str]] = typer.Option(None, "--arch-param", help="Architecture parameter KEY=VALUE (repeatable), e.g. layers=20."),
    layers: Optional[int] = typer.Option(None, "--layers", help="ReCNN: number of conv layers (default 10)."),
    filters: Optional[int] = typer.Option(None, "--filters", help="ReCNN: filters per layer (default 32)."),
    kernel: Optional[int] = typer.Option(None, "--kernel", help="ReCNN: kernel size, odd (default 3)."),
    no_residual: bool = typer.Option(False, "--no-residual", help="Disable the residual skip (paper's ablation)."),
    init: str = typer.Option("msra", "--init", help="Weight init: msra or xavier."),
    factor_input: bool = typer.Option(True, "--factor-input/--blind", help="Give the network the per-axis factor as input channels, or train blind (paper)."),
    scales: Optional[str] = typer.Option(None, "--scales", help="Factor list, e.g. '2,2,2;2,2,3;3,3,3' (default 2)."),
    scale_range: Optional[str] = typer.Option(None, "--scale-range", help="Per-axis factor range lo:hi, e.g. 1.5:4."),
    voxel_size_range: Optional[str] = typer.Option(None, "--voxel-size-range", help="Resample each HR patch to a random voxel "
                                                   "size in LO:HI mm first (scale-robust training), e.g. 0.5:1.5."),
    voxel_size_input: bool = typer.Option(False, "--voxel-size-input", help="Give the network the output voxel size (log2 mm "
                                          "per axis) as input channels; with --voxel-size-range it learns anatomy per scale."),
    coarsen_only: bool = typer.Option(False, "--coarsen-only", help="With --voxel-size-range: never resample a volume finer "
                                      "than its own voxel size (a drawn size below it is raised to it), so targets are never interpolated."),
    psf_input: bool = typer.Option(False, "--psf-input", help="Give the network the LR image's PSF width per axis as input "
                                   "channels (needs --augment ...,psf): upscale --input-fwhm/--input-psf then say how blurred an input is."),
    unit_fraction: float = typer.Option(0.0, "--unit-fraction", help="Fraction of patches with factor 1."),
    patch: int = typer.Option(25, "--patch", help="Patch edge in voxels."),
    batch: int = typer.Option(16, "--batch", help="Patches per batch."),
    patches_per_epoch: int = typer.Option(3200, "--patches-per-epoch", help="Patches in one epoch."),
    epochs: int = typer.Option(10, "--epochs", help="Number of epochs."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop (and save) after this many minutes."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    loss: str = typer.Option("psnr", "--loss", help="Loss expression over psnr (per-patch dB gain over the spline input), mse (paper), l1 "
                             "and the DNSP priors lowrank, sharpness, learned-sharpness, e.g. 'l1+1e-5*lowrank+5e-3*sharpness'."),
    lr_decay: Optional[str] = typer.Option(None, "--lr-decay", help="Step decay 'GAMMA@EPOCHS', e.g. 0.5@4."),
    augment: str = typer.Option("flip,permute,intensity", "--augment", help="Comma list of flip,permute,intensity,noise,bias,affine,sharpness,detail,psf."),
    reference: Optional[List[Path]] = typer.Option(None, "--reference", help="Registered HR reference per training image (guided)."),
    synthetic_reference: bool = typer.Option(False, "--synthetic-reference", help="Guided model with domain-randomised references."),
    reference_encoding: str = typer.Option("intensity", "--reference-encoding", help="How a guided model reads its reference: intensity (paper) "
                                            "or edges (gradient magnitude, contrast-agnostic)."),
    tissue_maps: Optional[List[Path]] = typer.Option(None, "--tissue-map", help="GM/WM probability maps on the grid of the first training "
                                                     "image, for its synthetic references and the low-field contrast."),
    slice_thickness: Optional[float] = typer.Option(None, "--slice-thickness", help="Thick-slice training: slice thickness in mm (PSF "
                                                    "FWHM) on each patch's thickest LR axis (default: the slice spacing)."),
    slice_profile: str = typer.Option("gaussian", "--slice-profile", help="Through-plane slice profile: gaussian or box."),
    degradation: str = typer.Option("simulated", "--degradation", help="simulated (the observation model) or low-field "
                                    "(also the SNR and T1 contrast of --field-strength)."),
    field_strength: Optional[float] = typer.Option(None, "--field-strength", help="Low-field degradation: the inputs' field (tesla)."),
    source_field: float = typer.Option(3.0, "--source-field", help="Field strength (tesla) of the training images."),
    source_snr: Optional[float] = typer.Option(None, "--source-snr", help="SNR of the training images at their 99.5th percentile "
                                               "(default 40)."),
    pairs: Optional[List[str]] = typer.Option(None, "--pairs", help="Train on a real pair LR:HR (repeat), or a TSV of lr/hr "
                                              "columns; no simulation."),
    register_pairs: bool = typer.Option(False, "--register-pairs", help="Rigidly register each pair's LR onto its HR first."),
    val_pairs: Optional[List[str]] = typer.Option(None, "--val-pairs", help="Held-out pair(s) LR:HR or a TSV, for validation."),
    val: Optional[List[Path]] = typer.Option(None, "--val", help="Validation HR image(s): PSNR per epoch, keep the best."),
    val_factor: str = typer.Option("2", "--val-factor", help="Validation factor(s), e.g. '2' or '2,2,2;1,1,4' (best epoch: best mean PSNR)."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Fine-tune from this model (name or path)."),
    new_channels_only: bool = typer.Option(False, "--new-channels-only", help="With --init-from: train only the first-layer "
                                           "weights of the input channels this run adds (zero-initialised), so the model "
                                           "still gives the starting model's output where they read 0."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint file (default: OUTPUT.ckpt.safetensors)."),
    checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Checkpoint every N iterations."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Resume from a checkpoint."),
    seed: int = typer.Option(0, "--seed", help="Random seed (runs are reproducible)."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32 or bf16."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads."),
    log_file: Optional[Path] = typer.Option(None, "--log", help="JSONL curve (default: OUTPUT.log.jsonl)."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name recorded in the metadata."),
    force: bool = Force, verbose: int = Verbose, quiet: bool = Quiet, debug: bool = Debug, json_out: bool = JsonOut,
) -> None:
    options = {k: v for k, v in locals().items() if k not in ("ctx", "config", "config_from", "dry_run", "verbose", "debug", "json_out")}
    from mrsr_cli.training.recipes import resolve_train_config

    # only what was typed overrides a recipe
    cfg = resolve_train_config(given=_given(ctx, options), config=config, config_from=config_from, dry_run=dry_run)
    if dry_run:
        from dataclasses import asdict

        _print_json(asdict(cfg))
        return
    from mrsr_cli.training.loop import train

    result = train(cfg)
    if json_out:
        _print_json(result)


# ----------------------------------------------------------------------------- fetch-model
@command("fetch-model", "Download, list, verify or pre-seed pretrained models (checksummed, shared cache).")
def fetch_model_cmd(
    names: List[str] = typer.Argument(None, help="Model name(s) from the index."),
    index: Optional[str] = typer.Option(None, "--index", help="Index JSON path or URL (default: MRSR_MODEL_INDEX or builtin)."),
    list_models: bool = typer.Option(False, "--list", help="List the models in the index."),
    all_models: bool = typer.Option(False, "--all", help="Fetch every model in the index."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Download into this folder instead of the cache."),
    verify: bool = typer.Option(False, "--verify", help="Re-check the sha256 of cached models."),
    allow_insecure: bool = typer.Option(False, "--allow-insecure", help="Allow plain http to non-loopback hosts."),
    timeout: float = typer.Option(30.0, "--timeout", help="Network timeout in seconds."),
    retries: int = typer.Option(3, "--retries", help="Download attempts."),
    force: bool = Force, verbose: int = Verbose, quiet: bool = Quiet, debug: bool = Debug, json_out: bool = JsonOut,
) -> None:
    from mrsr_cli.models.zoo import fetch_command

    result = fetch_command(names or [], index=index, list_models=list_models, all_models=all_models, dest=dest,
                           verify=verify, allow_insecure=allow_insecure, timeout=timeout, retries=retries,
                           force=force, progress=not quiet)
    if json_out:
        _print_json(result)
    elif not quiet:
        from rich.console import Console

        Console(stderr=True).print(result.get("text", ""))


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
