"""The ``mrsr`` command line: a thin typer layer over the library.

Each subcommand's options are rows of :mod:`mrsr_cli.app.options` (name, kind, default, help);
typer builds the command from them, and the function here only says what the command does with
the values, which the library checks.  Conventions shared by every subcommand: outputs are
never overwritten without ``--force``; ``-v``/``-q`` set verbosity; ``--json`` prints
machine-readable results on stdout while human text goes to stderr; exit 0 = success, 1 =
runtime error, 2 = usage error; errors are one line (``--debug`` shows the traceback).  Heavy
modules (torch, nibabel, SimpleITK) are imported inside the commands so that ``mrsr --help`` is
instant.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import math
import sys

import typer

from mrsr_cli import __version__
from mrsr_cli.app import options as table
from mrsr_cli.console import NOTICE
from mrsr_cli.errors import MrsrError, UsageError

app = typer.Typer(
    name="mrsr",
    help="Brain MRI super-resolution: simulate, register, train, upscale, evaluate, fetch-model.",
    epilog="A whole BIDS dataset: mrsr-bids BIDS_DIR OUTPUT_DIR participant [--participant-label L ...] "
           "[--n-procs N] (a BIDS App; docs/cluster.md).",
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
        level = "" if record.levelno in (logging.INFO, NOTICE) else f"{record.levelname.lower()}: "
        sys.stderr.write(f"mrsr: {level}{record.getMessage()}\n")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else NOTICE)
    log.handlers[:] = [_StderrHandler()]
    log.setLevel(level)
    log.propagate = False


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"mrsr: error: {message}\n")
    raise typer.Exit(code)


def command(name: str, help_text: str, rows: list | None = None, target: typer.Typer | None = None):
    """Register ``fn(ctx, **options)`` as ``mrsr NAME`` with the options of ``rows`` (default: the
    table's for NAME); its errors become one-line messages with exit codes 1/2."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(ctx: typer.Context, **kwargs):
            debug = kwargs.get("debug", False)
            _setup_logging(kwargs.get("verbose", 0) or 0, kwargs.get("quiet", False))
            try:
                return fn(ctx, **kwargs)
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

        wrapper.__signature__ = table.signature(name, rows)
        wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
        del wrapper.__wrapped__  # typer must read the table's signature, not fn's
        return (target or app).command(name, help=help_text, short_help=help_text.split(".")[0] + ".")(wrapper)

    return decorate


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mrsr {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
) -> None:
    """Brain MRI super-resolution toolkit (Pham et al. 2019 ReCNN)."""


def json_safe(value):
    """``value`` with non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``: strict JSON
    has no Infinity, and ``float("inf")`` reads the string back (the PSNR of identical images).

    >>> json_safe({"psnr": [float("inf"), 30.5]})
    {'psnr': ['inf', 30.5]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _print_json(payload) -> None:
    sys.stdout.write(json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False) + "\n")


def _given(ctx: typer.Context, options: dict) -> dict:
    """The options typed on the command line (typer vendors click: the source is compared by name)."""
    return {k: v for k, v in options.items()
            if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}


# ----------------------------------------------------------------------------- simulate
@command("simulate", "Simulate a low-resolution acquisition (PSF blur, sampling, Rician noise) of a high-resolution image.")
def simulate_cmd(ctx, *, in_file, out_file, factor, voxel_size, fwhm, psf, noise, seed, slice_thickness, slice_profile,
                 field_strength, source_field, source_snr, tissue_maps, acquisition, window, partial_fourier, bias, gamma,
                 force, json_out, **_process):
    from mrsr_cli.app.verbs import simulate_file
    from mrsr_cli.data.geometry import parse_factor, parse_triplet, parse_voxel_size

    info = simulate_file(in_file, out_file, factor=parse_factor(factor) if factor is not None else None,
                         voxel_size=parse_voxel_size(voxel_size) if voxel_size is not None else None,
                         fwhm=parse_triplet(fwhm, "--fwhm") if fwhm is not None else None, psf=psf, noise=noise, seed=seed, slice_thickness=slice_thickness,
                         slice_profile=slice_profile, field_strength=field_strength, source_field=source_field,
                         source_snr=source_snr, tissue_maps=tissue_maps, acquisition=acquisition, window=window,
                         partial_fourier=partial_fourier, bias=bias, gamma=gamma,
                         force=force)
    if json_out:
        _print_json({"out_file": str(out_file), **info})


# ----------------------------------------------------------------------------- upscale
@command("upscale", "Super-resolve an image onto a finer grid (CNN by default, or spline).")
def upscale_cmd(ctx, *, in_file, out_file, factor, voxel_size, like, method, device, precision, tile_size, memory_limit,
                threads, dtype, preview, force, quiet, json_out, **rest):
    from mrsr_cli.app.verbs import engine_option, upscale_file
    from mrsr_cli.data.geometry import parse_factor, parse_triplet, parse_voxel_size
    from mrsr_cli.methods import method_options

    given = _given(ctx, {name: rest[name] for name in table.method_options(rest)})
    accepted = method_options(method)
    for flag in given:
        if flag not in accepted:
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to --method {method}")
    options = dict(given)
    if "input_fwhm" in options:
        options["input_fwhm"] = parse_triplet(options["input_fwhm"], "--input-fwhm")
    if "order" in accepted:
        options["order"] = rest["order"]
    options.update(engine_option(method, device=device, precision=precision, tile_size=tile_size, memory_limit=memory_limit,
                                 threads=threads, progress=not quiet))
    payload = upscale_file(in_file, out_file, method=method, factor=parse_factor(factor) if factor is not None else None,
                           voxel_size=parse_voxel_size(voxel_size) if voxel_size is not None else None, like=like,
                           dtype=dtype, preview=preview, force=force, **options)
    if json_out:
        _print_json({"out_file": str(out_file), **payload})


# ----------------------------------------------------------------------------- evaluate
@command("evaluate", "PSNR and 3-D SSIM of test images against a reference, inside a head mask; or of methods across subjects.")
def evaluate_cmd(ctx, *, reference, tests, manifest, baseline, plot, mask, csv, force, quiet, json_out, **_process):
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
        elif not quiet:
            _print_comparison(result)
        return
    rows = evaluate_files(reference, tests, mask)
    if csv is not None:
        write_csv(csv, rows)
    if json_out:
        _print_json(rows)
    elif not quiet:
        from rich.table import Table

        table = Table(title=f"reference: {reference}")
        for col in ("image", "PSNR (dB)", "SSIM", "data range", "mask voxels"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["image"], f"{r['psnr']:.3f}", f"{r['ssim']:.4f}", f"{r['data_range']:.4g}", str(r["mask_voxels"]))
        _results_console().print(table)


def _results_console():
    """Results go to stdout (messages to stderr), as FSL's and ANTs' tools do; into a file or a pipe,
    tables keep their natural width instead of wrapping paths at 80 columns."""
    from rich.console import Console

    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 10_000, highlight=False)


def _print_comparison(result: dict) -> None:
    """People's view of a manifest comparison: mean ± sd per method, tests against the baseline, ANOVA."""
    from rich.table import Table

    console = _results_console()
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
def register_cmd(ctx, *, moving, fixed, out_file, transform, like, save_transform, apply, threads, force, json_out, **_process):
    from mrsr_cli.data.register import register_files

    result = register_files(moving, fixed, out_file, transform=transform, like=like, save_transform=save_transform,
                            apply=apply, threads=threads, force=force)
    if json_out:
        _print_json(result)


# ----------------------------------------------------------------------------- train
@command("train", "Train a super-resolution network on high-resolution images (LR inputs simulated on the fly).")
def train_cmd(ctx, *, config, config_from, dry_run, **options):
    from mrsr_cli.training.recipes import resolve_train_config

    # only what was typed overrides a recipe
    given = _given(ctx, {k: v for k, v in options.items() if k not in ("verbose", "debug", "json_out")})
    cfg = resolve_train_config(given=given, config=config, config_from=config_from, dry_run=dry_run)
    if dry_run:
        from dataclasses import asdict

        _print_json(asdict(cfg))
        return
    from mrsr_cli.training.loop import train

    result = train(cfg)
    if options["json_out"]:
        _print_json(result)


# ----------------------------------------------------------------------------- fetch-model
@command("fetch-model", "Download, list, verify or pre-seed pretrained models (checksummed, shared cache).")
def fetch_model_cmd(ctx, *, names, index, list_models, all_models, dest, verify, allow_insecure, timeout, retries, force, quiet,
                    json_out, **_process):
    from mrsr_cli.models.zoo import fetch_command

    result = fetch_command(names or [], index=index, list_models=list_models, all_models=all_models, dest=dest,
                           verify=verify, allow_insecure=allow_insecure, timeout=timeout, retries=retries,
                           force=force, progress=not quiet)
    if json_out:
        _print_json(result)
    elif not quiet:
        sys.stdout.write(result.get("text", "") + "\n")


def run() -> None:
    """Console-script entry point.  Command-line parse errors (an unknown option, a missing
    argument, a value of the wrong type) are one line with exit code 2, like every other usage
    error; ``mrsr`` alone prints the help."""
    usage_errors, no_args, aborts = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except no_args as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except usage_errors as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "mrsr"
        sys.stderr.write(f"mrsr: error: {exc.format_message()} (see {where} --help)\n")
        sys.exit(2)
    except aborts:
        sys.stderr.write("mrsr: error: interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions() -> tuple[tuple, tuple, tuple]:
    """``(usage errors, no-arguments help, aborts)`` of the click typer runs on: recent typer
    vendors its own copy (``typer._click``), older ones use click itself."""
    modules = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    def found(attr):
        return tuple(getattr(m, attr) for m in modules if hasattr(m, attr))

    return found("UsageError"), found("NoArgsIsHelpError"), found("Abort")


if __name__ == "__main__":
    run()
