"""The network method: the engine over the model read once, then the reference's guidance and data consistency."""

from __future__ import annotations

import logging

from mrsr_cli.degrade.observation import KSPACE, check_input_psf
from mrsr_cli.degrade.psf_match import SIMULATE_FWHM_VOXELS
from mrsr_cli.errors import UsageError


def cnn(volume, target, *, model: str | None = None, reference=None, register: bool = False, ensemble: int | None = None,
        input_fwhm=None, input_psf: str = "gaussian", consistency="auto", guidance: str | None = None, mask=None,
        safety_net: str | None = "auto", adapt: int | None = None, seed: int = 0, engine=None):
    """The network of ``model`` (default: the builtin) through the engine (:func:`mrsr_cli.infer.engine.super_resolve`),
    then made consistent with the input under ``consistency`` (``auto``, ``off`` or a number of
    iterations: :func:`mrsr_cli.methods.consistency.make_consistent`, with the same input PSF; ``auto``
    runs only when that PSF is known, :func:`~mrsr_cli.methods.consistency.knows_input_psf`);
    ``reference``: path of a registered HR image of another contrast, aligned first when
    ``register``, read by a guided model (``guidance="network"``) or fitted to the input and
    blended into an unguided network's output before the consistency step
    (``guidance="transfer"``, :func:`mrsr_cli.methods.guidance.transfer`); ``guidance="auto"`` (the
    default) does the first for a guided ``model`` and the second for any other, the default
    model included; ``ensemble``: flip self-ensemble passes (default: the engine's);
    ``input_fwhm`` (mm per input axis; default its voxel size) and ``input_psf``: how blurred
    the input is, for PSF-aware models, the consistency step and the transfer; ``mask``: path of
    a brain mask (:func:`brain_mask_on`): the network runs only in its bounding box and the output
    outside it is the spline interpolation; ``safety_net``: ``auto`` (for unguided models that keep
    the input's contrast: not a low-field one) blends the output towards spline where the pipeline
    loses one scale down, the input degraded as it is believed made
    (:mod:`mrsr_cli.methods.safety`), ``off`` never; ``adapt``: fine-tune a copy of the network
    on the input for that many steps first (:mod:`mrsr_cli.methods.adapt`, deterministic with
    ``seed``); ``engine``:
    :class:`~mrsr_cli.infer.tiling.EngineOptions`.  The model is resolved and read once."""
    import dataclasses

    from mrsr_cli.infer.engine import super_resolve
    from mrsr_cli.infer.tiling import EngineOptions
    from mrsr_cli.methods.consistency import knows_input_psf, make_consistent, parse_mode
    from mrsr_cli.methods.guidance import check_transfer_memory, parse_guidance
    from mrsr_cli.methods.reference import prepare_reference
    from mrsr_cli.models.prepared import prepare_model

    if register and reference is None:
        raise UsageError("--register needs --reference")
    check_input_psf(input_psf, input_fwhm, volume.grid)
    engine = engine or EngineOptions()
    if ensemble is not None:
        engine = dataclasses.replace(engine, ensemble=ensemble)
    mode = parse_mode(consistency)  # usage errors before the network runs
    from mrsr_cli.methods.safety import parse_safety_net

    safety_net = parse_safety_net(safety_net)
    if adapt is not None:
        from mrsr_cli.methods.adapt import check_adapt

        adapt = check_adapt(adapt)
    guidance = parse_guidance(guidance)
    if guidance != "auto" and reference is None:
        raise UsageError(f"--guidance {guidance} needs --reference")
    # With no --model, "network" means the builtin guided model and "auto" the default one, or, told
    # an input PSF the default cannot read (it assumes simulate's), the PSF-aware one.
    told = input_fwhm is not None or input_psf != "gaussian"
    guided_builtin = reference is not None and guidance == "network"
    # A k-space input is blurred to simulate's PSF for the default network (NOTES.md §16), which beat
    # the PSF-aware one told "no blur"; the k-space data consistency then restores the input's band.
    matched = model is None and input_psf == KSPACE and not guided_builtin
    if model is None and told and not matched and not guided_builtin:
        model = TOLD_PSF_MODEL
        logging.getLogger("mrsr").info("the input's PSF was told: using the builtin model %s, which reads it", model)
    net = prepare_model(model, guided=reference is not None and guidance == "network")
    if reference is not None and guidance == "auto":  # a guided model reads it; any other (the default one) transfers it
        guidance = "network" if net.guided else "transfer"
    transferred = reference is not None and guidance == "transfer"
    if transferred and net.guided:
        raise UsageError(f"--guidance transfer runs an unguided network, and model {net.name} is guided: "
                         "use --guidance network, or an unguided model")
    if transferred:
        check_transfer_memory(target, engine.memory_limit)
    if adapt and net.guided:  # its patches would need the reference's too, which adapting does not cut
        raise UsageError(f"--adapt fine-tunes networks without a reference channel, and model {net.name} reads one: "
                         "use --guidance transfer, or leave out --adapt")
    read_reference, record = None, {}
    if reference is not None and not transferred:
        data, grid, record = prepare_reference(reference, volume, target, register)
        read_reference = (data, grid)
    from mrsr_cli.data.geometry import bounding_box

    warn_outside_training(net.meta, net.name, volume, target)
    if matched:  # from the header, before the blur allocates
        from mrsr_cli.budget import check_grid_fits
        from mrsr_cli.degrade.psf_match import MATCH_VOLUMES

        check_grid_fits("upscale --input-psf kspace (the input matched to simulate's PSF)", volume.grid.shape,
                        MATCH_VOLUMES, engine.memory_limit, grid="input")
    seen, seen_fwhm, seen_psf = network_input(volume, input_fwhm, input_psf, matched)
    adapted = None
    if adapt:
        net, adapted = adapt_to_input(net, seen, target, adapt, seed, engine, seen_fwhm, seen_psf,
                                      kspace_input=input_psf == KSPACE)
    inside = None if mask is None else brain_mask_on(mask, target)
    out, info = super_resolve(seen, target, net, reference=read_reference, options=engine, input_fwhm=seen_fwhm,
                              input_psf=seen_psf, region=None if inside is None else bounding_box(inside))
    info.update(record)
    if matched:  # what the input was told, as a PSF-reading model's record says it, and what the network read
        info["InputPSF"] = {"Shape": KSPACE, "FWHM": [0.0, 0.0, 0.0]}
        info["InputMatchedToPSF"] = MATCHED_RECORD
    if adapted:
        info["Adapt"] = adapted
    if inside is not None:
        import numpy as np

        from mrsr_cli.data.interpolate import resample

        np.copyto(out, resample(volume.data, volume.grid, target, order=3), where=~inside)
        info["Mask"] = {"Path": str(mask), "Fraction": round(float(inside.mean()), 4)}
    quiet = dataclasses.replace(engine, progress=False)

    def network(coarse, grid):  # the same network, for the transfer's check one scale down
        return super_resolve(network_input(coarse, None, input_psf, matched)[0], grid, net, options=quiet)[0]

    if transferred:
        out, info["Guidance"] = transfer_reference(out, volume, target, reference, register, input_fwhm, input_psf, network)
    psf_known = knows_input_psf(net.meta, told)
    out, consistency_record = make_consistent(out, volume, target, mode, fwhm_mm=input_fwhm, psf=input_psf,
                                              psf_known=psf_known, memory_limit=engine.memory_limit)
    if consistency_record:
        info["DataConsistency"] = consistency_record
    # spline cannot judge a contrast change, and one scale down a guided network has no reference to read
    changes_contrast = net.meta.get("training", {}).get("degradation") == "low-field"
    if safety_net == "auto" and not changes_contrast and not net.guided:
        info["SafetyNet"], out = safety_check(out, volume, target, net, quiet, mode, input_fwhm, input_psf, psf_known,
                                              matched)
    return out, info


MATCHED_RECORD = {"Blur": "gaussian", "FWHMInputVoxels": SIMULATE_FWHM_VOXELS,
                  "Why": "a k-space input blurred to mrsr simulate's PSF for the default network; data consistency "
                         "restores the input's own frequencies"}


def network_input(volume, input_fwhm, input_psf: str, matched: bool):
    """``(volume, input_fwhm, input_psf)`` as the network reads them: the input as it is, or, when
    ``matched``, blurred to ``mrsr simulate``'s PSF (:func:`mrsr_cli.degrade.psf_match.match_to_simulate`)
    and described as simulate's."""
    import dataclasses

    from mrsr_cli.degrade.psf_match import match_to_simulate

    if not matched:
        return volume, input_fwhm, input_psf
    return dataclasses.replace(volume, data=match_to_simulate(volume.data)), None, "gaussian"


def adapt_to_input(net, volume, target, steps: int, seed: int, engine, input_fwhm=None, input_psf: str = "gaussian",
                   kspace_input: bool = False):
    """:func:`mrsr_cli.methods.adapt.adapt_model` with the input's factor (per input axis) and the
    input's acquisition as believed (told, or simulate's), its cost said first and its steps shown
    as a progress bar.  Thick slices learn from the network's own output (one more upscale first).
    ``kspace_input``: the input was told a k-space truncation (``volume`` is then either it, for a
    chosen PSF-reading model, or it matched to simulate's PSF), where adapting lowered the gain
    where measured: a warning."""
    import dataclasses

    from mrsr_cli.console import NOTICE, ProgressBar
    from mrsr_cli.infer.device import resolve_device, resolve_precision
    from mrsr_cli.infer.engine import input_psf_encoding, super_resolve
    from mrsr_cli.budget import check_grid_fits
    from mrsr_cli.methods import WORKING_VOLUMES
    from mrsr_cli.methods.adapt import IN_PLANE_VOLUMES, adapt_model, adapt_seconds, thick_slice_axis
    from mrsr_cli.methods.safety import check_acquisition

    factor = input_axis_factor(volume, target)
    if factor is None:
        raise UsageError("--adapt needs an output grid whose axes are parallel to the input's")
    device = resolve_device(engine.device)
    precision = "bf16" if resolve_precision(engine.precision, device) == "bf16" else "fp32"
    thick = thick_slice_axis(factor) is not None
    acquisition = check_acquisition(input_psf, input_fwhm, volume.grid.voxel_size)
    if not thick and kspace_input:  # measured, docs/engine.md
        logging.getLogger("mrsr").warning("--adapt on a k-space input lowered the gain over spline where measured "
                                          "(x2: +2.24 -> +1.35 dB on a validation template, -0.02 -> -0.35 on "
                                          "Colin27); compare with and without it")
    if thick:  # before the extra upscale: refuse, with the number, a grid its working volumes do not fit
        check_grid_fits("upscale --adapt on thick slices", target.shape, WORKING_VOLUMES["cnn"] + IN_PLANE_VOLUMES,
                        engine.memory_limit)
    logging.getLogger("mrsr").log(NOTICE, "adapting %s to the input%s: %d steps, about %.0f s%s", net.name,
                                  " from its in-plane axes" if thick else "", steps,
                                  adapt_seconds(net, steps, device.type, precision, engine.threads),
                                  " after one upscale" if thick else "")

    def estimate():  # the network's output, before adapting: what in-plane pairs are cut from
        quiet = dataclasses.replace(engine, progress=False)
        return super_resolve(volume, target, net, options=quiet, input_fwhm=input_fwhm, input_psf=input_psf)[0]

    bar = ProgressBar("adapting", steps, enabled=engine.progress)
    try:
        return adapt_model(net, volume, factor, steps, seed=seed, device=device, precision=precision,
                           acquisition=acquisition,
                           psf_code=input_psf_encoding(volume.grid, target, input_fwhm, input_psf),
                           progress=lambda done, total: bar.update(completed=done), estimate=estimate)
    finally:
        bar.close()


def input_axis_factor(volume, target):
    """The upscaling factor along each of the input's voxel axes (input voxel / output voxel), or
    ``None`` when the output grid's axes are not parallel to the input's: what the checks one scale
    down and ``--adapt`` degrade the input by."""
    from mrsr_cli.degrade.observation import ObservationModel
    from mrsr_cli.errors import MrsrError

    try:
        return ObservationModel(target, volume.grid).factor
    except MrsrError:
        return None


TOLD_PSF_MODEL = "psf-aware"  # the builtin that reads --input-fwhm/--input-psf (the default assumes simulate's PSF)
FACTOR_TOLERANCE = 1.05  # a requested factor this much above the largest trained one is warned of


def warn_outside_training(meta: dict, name: str, volume, target) -> list[str]:
    """One warning line (logged; exit status unchanged) for each way the request lies outside what
    model ``name`` trained on: a factor above its largest training factor (by more than
    :data:`FACTOR_TOLERANCE`), or an input whose BIDS contrast suffix is not the model's
    contrast.  Returns the lines."""
    from mrsr_cli.data.geometry import scale_factor
    from mrsr_cli.data.bids import bids_contrast

    lines = []
    training = meta.get("training", {})
    trained = [max(f) for f in training.get("scales") or []] + ([training["scale_range"][1]] if training.get("scale_range") else [])
    requested = max(float(f) for f in scale_factor(volume.grid, target))
    if trained and requested > FACTOR_TOLERANCE * max(trained):
        lines.append(f"factor {requested:g} is beyond what model {name} trained on (up to {max(trained):g}): expect less "
                     f"gain, or artefacts; compare with --method spline")
    contrast, known = bids_contrast(volume.path) if volume.path else None, meta.get("contrasts") or []
    if contrast and known and "unknown" not in known and contrast not in known:
        lines.append(f"the input is {contrast} (its file name) and model {name} trained on {', '.join(known)}: "
                     f"expect artefacts; use a model trained on {contrast}")
    for line in lines:
        logging.getLogger("mrsr").warning(line)
    return lines


def safety_check(out, volume, target, net, engine, mode, input_fwhm, input_psf: str, psf_known: bool,
                 matched: bool = False) -> tuple[dict, object]:
    """:func:`mrsr_cli.methods.safety.apply_safety_net` of the pipeline (the network ``net`` run by
    ``engine`` on :func:`network_input`, then data consistency in ``mode``) with the input's PSF as
    told or assumed, on grids whose axes are parallel (else skipped, with a note); ``(the
    sidecar's record, the output)``."""
    from mrsr_cli.infer.engine import super_resolve
    from mrsr_cli.methods.consistency import make_consistent
    from mrsr_cli.methods.safety import apply_safety_net, check_acquisition

    acquisition = check_acquisition(input_psf, input_fwhm, volume.grid.voxel_size)
    scale = acquisition.get("fwhm_scale")

    def pipeline(coarse, grid):  # network and data consistency, as for the output, on the input degraded once more
        fwhm = None if input_fwhm is None else tuple(s * v for s, v in zip(scale, coarse.grid.voxel_size))
        seen, seen_fwhm, seen_psf = network_input(coarse, fwhm, input_psf, matched)
        x = super_resolve(seen, grid, net, options=engine, input_fwhm=seen_fwhm, input_psf=seen_psf)[0]
        return make_consistent(x, coarse, grid, mode, fwhm_mm=fwhm, psf=input_psf, psf_known=psf_known,
                               memory_limit=engine.memory_limit)[0]

    factor = input_axis_factor(volume, target)
    if factor is None:
        logging.getLogger("mrsr").info("safety net skipped: the output grid's axes are not parallel to the input's")
        return {"Skipped": "output axes not parallel to the input's"}, out
    out, record = apply_safety_net(out, volume, target, pipeline, factor, acquisition)
    return record, out


def brain_mask_on(path, target):
    """The mask image at ``path`` on ``target`` (a boolean array): its non-zero voxels, resampled linearly
    in world coordinates and kept where ≥ 0.5; a usage error when nothing of it lies on ``target``."""
    from mrsr_cli.data.interpolate import make_resampler
    from mrsr_cli.data.io import load_volume

    mask = load_volume(path, "mask")
    inside = make_resampler((mask.data != 0).astype("float32"), mask.grid, target, order=1).full() >= 0.5
    if not inside.any():
        raise UsageError(f"mask {path} has no brain voxel on the output grid (empty, or another field of view)")
    return inside


def transfer_reference(out, volume, target, reference, register, input_fwhm, input_psf, network):
    """:func:`mrsr_cli.methods.guidance.transfer` of ``reference`` (a path; registered first when
    ``register``) into ``out``, checked with ``network`` one scale down; ``(out, the sidecar's
    Guidance record)``, the output unchanged (with a warning) when the output grid's axes are
    not parallel to the input's."""
    import numpy as np

    from mrsr_cli.data.geometry import axis_aligned_mapping, voxel_mapping
    from mrsr_cli.data.interpolate import resample
    from mrsr_cli.methods.guidance import transfer
    from mrsr_cli.methods.reference import prepare_reference

    if axis_aligned_mapping(voxel_mapping(target, volume.grid)) is None:
        logging.getLogger("mrsr").warning("guidance transfer skipped: the output grid's axes are not parallel to the input's")
        return out, {"Method": "transfer", "Skipped": "output axes not parallel to the input's"}
    data, grid, record = prepare_reference(reference, volume, target, register)
    on_target = data if grid.shape == target.shape and np.allclose(grid.affine, target.affine, atol=1e-6) \
        else resample(data, grid, target, order=3)
    out, info = transfer(out, volume, on_target, target, upscale=network, fwhm_mm=input_fwhm, psf=input_psf)
    return out, {**info, **record}
