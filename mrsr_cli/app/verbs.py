"""File-level verbs: load → library call → atomic save + JSON sidecar.

What each ``mrsr`` subcommand does once its options are parsed, callable from Python with
paths (the CLI and the Nipype interfaces only add parsing).  Usage errors name the problem and
the option, by its flag, as every check of an option lives here or below, once.  ``register``, ``evaluate``, ``train`` and ``fetch-model`` have theirs in
their own modules (:func:`mrsr_cli.data.register.register_files`, :func:`mrsr_cli.evaluation.evaluate.evaluate_files`,
:func:`mrsr_cli.training.loop.train`, :func:`mrsr_cli.models.zoo.fetch_command`).

Example::

    info = upscale_file("sub-01_T1w.nii.gz", "sub-01_desc-superres_T1w.nii.gz", factor=(2, 2, 2))
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mrsr_cli.console import NOTICE

log = logging.getLogger("mrsr")


def target_grid(volume, *, factor=None, voxel_size=None, like=None, upscale: bool = True):
    """The output grid from exactly one of ``factor`` (per axis; an upscaling factor when
    ``upscale``, a downscaling one otherwise), ``voxel_size`` (mm) or ``like`` (a NIfTI path whose
    grid is taken as it is, or a :class:`~mrsr_cli.data.geometry.Grid`).  Grids keep the input's field of view (:mod:`mrsr_cli.data.geometry`)."""
    from mrsr_cli.errors import UsageError
    from mrsr_cli.data.geometry import Grid, resized_grid, scaled_grid, upscaled_grid
    from mrsr_cli.data.io import load_grid

    given = [x for x in (factor, voxel_size, like) if x is not None]
    if len(given) != 1:
        raise UsageError("give exactly one of --factor, --voxel-size" + (", --like" if upscale else ""))
    if factor is not None:
        return upscaled_grid(volume.grid, factor) if upscale else scaled_grid(volume.grid, factor)
    if voxel_size is not None:
        return resized_grid(volume.grid, voxel_size)
    return like if isinstance(like, Grid) else load_grid(like, what="grid reference (like)")


def check_target(method: str, source, target, engine=None) -> None:
    """Refuse, from the headers alone and before any allocation: an output grid coarser than the
    input along any axis for a method that inverts the observation model (``upscale`` makes grids
    finer; ``spline`` resamples onto a coarser grid anti-aliased, and ``mrsr simulate`` makes a
    lower-resolution acquisition); and one whose working volumes (float32) do not fit the
    memory limit, or the RAM available."""
    from mrsr_cli.data.geometry import voxel_mapping
    from mrsr_cli.errors import UsageError
    from mrsr_cli.budget import check_grid_fits
    from mrsr_cli.methods import WORKING_VOLUMES

    steps = np.linalg.norm(voxel_mapping(source, target)[:3, :3], axis=0)  # input voxels per output voxel step
    if method != "spline" and (steps > 1 + 1e-6).any():
        axis = int(np.argmax(steps))
        raise UsageError(f"the output grid is coarser than the input along axis {axis} ({steps[axis]:.3g} input voxels per "
                         f"output voxel): upscale makes grids finer; use --method spline (anti-aliased) or mrsr simulate")
    check_grid_fits(f"upscale --method {method}", target.shape, WORKING_VOLUMES.get(method, 4),
                    engine.memory_limit if engine is not None else None)


def simulate_volume(volume, *, factor=None, voxel_size=None, low_field=None, tissue_maps=None, **settings) -> tuple:
    """``(LR data, LR grid, record)``: the in-memory core of :func:`simulate_file` and
    :func:`mrsr_cli.api.simulate`.  The LR grid from exactly one of ``factor`` and ``voxel_size``
    (a low-field simulation alone keeps the grid), refused before any allocation when it does not
    fit the RAM; then :func:`mrsr_cli.degrade.simulate.simulate_lowres` with ``settings``."""
    from mrsr_cli.budget import check_grid_fits
    from mrsr_cli.degrade.simulate import simulate_lowres

    if factor is None and voxel_size is None and low_field is not None:
        factor = (1.0, 1.0, 1.0)
    lr_grid = target_grid(volume, factor=factor, voxel_size=voxel_size, upscale=False)
    check_grid_fits("simulate", lr_grid.shape, 3)
    tissue = _load_tissue_maps(tissue_maps, volume) if tissue_maps else None
    return simulate_lowres(volume.data, volume.grid, voxel_size=lr_grid.voxel_size, low_field=low_field, tissue=tissue,
                           **settings)


def engine_option(method: str, **settings) -> dict:
    """``{"engine": EngineOptions.from_cli(**settings)}`` for a method that takes the engine's
    options (device, precision, tiles, memory, threads, progress), else ``{}``: what the CLI and
    the Python API pass to :func:`upscale_volume`."""
    from mrsr_cli.methods import method_options

    if "engine" not in method_options(method):
        return {}
    from mrsr_cli.infer.tiling import EngineOptions

    return {"engine": EngineOptions.from_cli(**settings)}


def simulate_file(in_file, out_file, *, factor=None, voxel_size=None, fwhm=None, psf: str = "gaussian",
                  noise: float = 0.0, seed: int | None = None, slice_thickness: float | None = None,
                  slice_profile: str | None = None, field_strength: float | None = None, source_field: float = 3.0,
                  source_snr: float | None = None, tissue_maps=None, acquisition: str = "psf", window: str | None = None,
                  partial_fourier: float = 1.0, bias: float = 0.0, gamma: float = 1.0, force: bool = False) -> dict:
    """Write the simulated LR acquisition of ``in_file`` (:func:`mrsr_cli.degrade.simulate.simulate_lowres`)
    and its sidecar; returns the simulation record.  ``slice_thickness`` (mm) and
    ``slice_profile``: thick slices on the through-plane axis (the LR header's slice dimension).
    ``field_strength`` (T, below ``source_field``): a low-field acquisition
    (:mod:`mrsr_cli.degrade.lowfield`), its contrast change from ``tissue_maps`` (GM, WM[, CSF] on the
    input's grid) when given; without a factor or voxel size the grid is kept."""
    from mrsr_cli.data.bids import write_sidecar
    from mrsr_cli.data.io import check_outputs, load_volume, output_set, require_suffix, save_volume, sidecar_path
    from mrsr_cli.degrade.simulate import check_simulation
    from mrsr_cli.errors import UsageError

    check_simulation(fwhm=fwhm, psf=psf, noise=noise, slice_thickness=slice_thickness, slice_profile=slice_profile, seed=seed,
                     acquisition=acquisition, window=window, partial_fourier=partial_fourier, bias=bias, gamma=gamma)
    low_field = None
    if field_strength is not None:
        from mrsr_cli.degrade.lowfield import DEFAULT_SOURCE_SNR, LowField

        low_field = LowField(field_strength, source_field, DEFAULT_SOURCE_SNR if source_snr is None else source_snr)
    elif tissue_maps or source_snr is not None:
        raise UsageError("tissue maps and a source SNR belong to a low-field simulation: give a field strength")
    outputs = [require_suffix(out_file), sidecar_path(out_file)]
    check_outputs(outputs, [in_file, *(tissue_maps or [])], force)
    volume = load_volume(in_file)
    lr, lr_grid, info = simulate_volume(volume, factor=factor, voxel_size=voxel_size, low_field=low_field,
                                        tissue_maps=tissue_maps, fwhm=fwhm, psf=psf, noise=noise, seed=seed,
                                        slice_thickness=slice_thickness, slice_profile=slice_profile,
                                        acquisition=acquisition, window=window, partial_fourier=partial_fourier,
                                        bias=bias, gamma=gamma)
    extra = {"SliceThickness": info["slice_thickness_mm"]} if "slice_thickness_mm" in info else {}
    if low_field is not None:
        extra["MagneticFieldStrength"] = low_field.field  # the BIDS key, in tesla
    with output_set(outputs) as staged:
        save_volume(staged[Path(out_file)], lr, lr_grid.affine, volume.codes, slice_axis=info.get("slice_axis"))
        write_sidecar(out_file, {"Operation": "simulate", **extra, **info}, sources=[in_file, *(tissue_maps or [])],
                      to=staged[sidecar_path(out_file)])
    log.log(NOTICE, "wrote %s: %s voxels of %s mm", out_file, lr_grid.shape, tuple(round(v, 4) for v in lr_grid.voxel_size))
    return info


def _load_tissue_maps(paths, volume):
    """GM, WM[, CSF] probability maps on ``volume``'s grid, stacked (K, ...) and scaled to [0, 1]."""
    import numpy as np

    from mrsr_cli.errors import MrsrError, UsageError
    from mrsr_cli.data.io import load_volume

    if not 2 <= len(paths) <= 3:
        raise UsageError(f"give 2 or 3 tissue maps (GM, WM[, CSF]), got {len(paths)}")
    maps = []
    for path in paths:
        tmap = load_volume(path, what="tissue map")
        diff = volume.grid.describe_difference(tmap.grid)
        if diff:
            raise MrsrError(f"tissue map {path} is not on the grid of the input image: {diff}")
        maps.append(tmap.data / max(float(tmap.data.max()), 1e-6))
    return np.stack(maps)


def reads_sidecar(method: str, method_options: dict) -> bool:
    """Whether ``method`` reads an input PSF and none is given (``input_psf`` absent or ``auto``, no
    ``input_fwhm``): only then is the input's sidecar worth reading (:func:`told_by_sidecar`)."""
    from mrsr_cli.methods import method_options as accepted

    return ("input_psf" in accepted(method) and method_options.get("input_psf", "auto") == "auto"
            and method_options.get("input_fwhm") is None)


def told_by_sidecar(method: str, method_options: dict, sidecar: dict | None, voxel_size) -> dict | None:
    """When :func:`reads_sidecar`, what the input's scanner sidecar tells
    (:func:`mrsr_cli.degrade.scanner.psf_from_sidecar`) goes into ``method_options`` (``auto``
    itself never reaches a method); returns the record for the output's sidecar
    (``InputPSFFromSidecar``), or ``None``."""
    from mrsr_cli.degrade.scanner import psf_from_sidecar

    reads = reads_sidecar(method, method_options)
    if method_options.get("input_psf") == "auto":
        del method_options["input_psf"]
    if not reads:
        return None
    told = psf_from_sidecar(sidecar, voxel_size)
    if told is None:
        return None
    method_options["input_psf"] = told.input_psf
    if told.input_fwhm is not None:
        method_options["input_fwhm"] = told.input_fwhm
    log.log(NOTICE, "the input's sidecar says %s: told --input-psf %s%s (--input-psf gaussian ignores the sidecar)",
            told.reason, told.input_psf, "" if told.input_fwhm is None else
            " --input-fwhm " + ",".join(f"{v:g}" for v in told.input_fwhm))
    return {"Shape": told.input_psf, "FWHM": None if told.input_fwhm is None else [round(v, 6) for v in told.input_fwhm],
            "Reason": told.reason}


def told_by_image(method: str, method_options: dict, volume, target, sidecar: dict | None) -> dict | None:
    """With nothing told (no input PSF given, no scanner's sidecar) to the default network: white noise
    in the input's background says that no filter followed its k-space truncation
    (:mod:`mrsr_cli.degrade.noise_colour`), so it is told ``kspace`` (into ``method_options``);
    returns the record for the output's sidecar (``InputPSFFromImage``), or ``None``.  Not for
    thick slices (a 2-D scan's slices are white across whatever their profile), a model the user
    chose (it may have learned another degradation), nor an ``mrsr simulate`` output (its noise
    was added after the degradation, as no scanner adds it)."""
    from mrsr_cli.data.geometry import scale_factor
    from mrsr_cli.degrade.noise_colour import WHITE_LIMIT, background_noise
    from mrsr_cli.degrade.observation import KSPACE
    from mrsr_cli.methods.adapt import thick_slice_axis

    # per output axis, right for oblique and permuted grids too: only whether one axis alone is upscaled matters
    factor = scale_factor(volume.grid, target)
    if (method != "cnn" or method_options.get("model") is not None or (sidecar or {}).get("Operation") == "simulate"
            or thick_slice_axis(factor) is not None):
        return None
    colour = background_noise(volume.data)
    if colour is None or not colour.white:
        return None
    method_options["input_psf"] = KSPACE
    log.log(NOTICE, "the input's background noise is white (neighbour correlation at most %.3f, below %g): no filter "
            "followed its acquisition, told --input-psf kspace (--input-psf gaussian keeps simulate's PSF)",
            max(colour.correlation), WHITE_LIMIT)
    return {"Shape": KSPACE, "Noise": colour.record(),
            "Reason": "white background noise: a k-space truncation that no filter followed"}


def upscale_volume(volume, target, *, method: str = "cnn", sidecar: dict | None = None, **method_options) -> tuple:
    """``(output on target, sidecar record)``: ``volume`` super-resolved by ``method`` onto the grid
    ``target``, after the checks from headers (:func:`check_target`), with the negative-value
    policy applied; ``sidecar``: the input's parsed JSON sidecar, read for its acquisition when no
    input PSF is given (:func:`told_by_sidecar`), and without one, the input's background noise
    (:func:`told_by_image`).  The in-memory core of :func:`upscale_file` and
    :func:`mrsr_cli.api.upscale`."""
    from mrsr_cli.methods import check_options, run_method

    reads = reads_sidecar(method, method_options)
    told = told_by_sidecar(method, method_options, sidecar, volume.grid.voxel_size)
    check_options(method, method_options)
    check_target(method, volume.grid, target, method_options.get("engine"))
    from_image = told_by_image(method, method_options, volume, target, sidecar) if reads and not told else None
    payload = {
        "Operation": "upscale",
        "Method": method,
        "InputShape": list(volume.grid.shape),
        "InputVoxelSize": [round(v, 6) for v in volume.grid.voxel_size],
        "OutputShape": list(target.shape),
        "OutputVoxelSize": [round(v, 6) for v in target.voxel_size],
        "Factor": [round(a / b, 6) for a, b in zip(volume.grid.voxel_size, target.voxel_size)],
    }
    if told:
        payload["InputPSFFromSidecar"] = told
    if from_image:
        payload["InputPSFFromImage"] = from_image
    out, info = run_method(method, volume, target, **method_options)
    payload.update(info)
    if volume.data.min() >= 0:  # the negative-value policy (docs/engine.md): a magnitude image stays non-negative
        payload["NegativeVoxelsClipped"] = int(np.count_nonzero(out < 0))
        np.maximum(out, 0, out=out)
    return out, payload


def upscale_file(in_file, out_file, *, method: str = "cnn", factor=None, voxel_size=None, like=None, preview=None,
                 force: bool = False, dtype: str = "float32", **method_options) -> dict:
    """Write ``in_file`` super-resolved by ``method`` (:data:`mrsr_cli.methods.METHODS`, with its
    ``method_options``) onto the target grid in ``dtype`` (:func:`~mrsr_cli.data.io.output_dtype`), its
    sidecar and, if asked, a PNG ``preview``; returns the sidecar's content."""
    from mrsr_cli.data.bids import input_sidecar, write_sidecar
    from mrsr_cli.data.io import (check_output_dtype, check_outputs, load_volume, output_dtype, output_set, require_suffix,
                                  save_volume, sidecar_path)
    from mrsr_cli.methods import check_options

    check_options(method, method_options)  # before any work
    output_dtype(dtype)
    check_output_dtype(out_file, dtype)
    reference = method_options.get("reference")
    outputs = [require_suffix(out_file), sidecar_path(out_file), preview and require_suffix(preview, (".png",))]
    check_outputs(outputs, [in_file, like, reference, method_options.get("mask")], force)
    volume = load_volume(in_file)
    target = target_grid(volume, factor=factor, voxel_size=voxel_size, like=like)
    sidecar = input_sidecar(in_file) if reads_sidecar(method, method_options) else None
    out, payload = upscale_volume(volume, target, method=method, sidecar=sidecar, **method_options)
    with output_set(outputs) as staged:
        save_volume(staged[Path(out_file)], out, target.affine, volume.codes, dtype=output_dtype(dtype, volume.disk_dtype))
        write_sidecar(out_file, payload, sources=[in_file, reference, method_options.get("mask")],
                      to=staged[sidecar_path(out_file)])
        if preview is not None:
            from mrsr_cli.app.preview import write_preview

            write_preview(staged[Path(preview)], volume, out, target)
    log.log(NOTICE, "wrote %s: %s voxels of %s mm", out_file, target.shape, tuple(round(v, 4) for v in target.voxel_size))
    return payload
