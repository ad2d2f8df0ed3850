"""The network method: the engine over the model read once, then the reference's guidance and data consistency."""

from __future__ import annotations

import logging

from mrsr_cli.degrade.observation import check_input_psf
from mrsr_cli.errors import UsageError


def cnn(volume, target, *, model: str | None = None, reference=None, register: bool = False, ensemble: int | None = None,
        input_fwhm=None, input_psf: str = "gaussian", consistency="auto", guidance: str | None = None, mask=None,
        engine=None):
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
    outside it is the spline interpolation; ``engine``:
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
    guidance = parse_guidance(guidance)
    if guidance != "auto" and reference is None:
        raise UsageError(f"--guidance {guidance} needs --reference")
    # With no --model, "network" means the builtin guided model and "auto" the default one.
    net = prepare_model(model, guided=reference is not None and guidance == "network")
    if reference is not None and guidance == "auto":  # a guided model reads it; any other (the default one) transfers it
        guidance = "network" if net.guided else "transfer"
    transferred = reference is not None and guidance == "transfer"
    if transferred and net.guided:
        raise UsageError(f"--guidance transfer runs an unguided network, and model {net.name} is guided: "
                         "use --guidance network, or an unguided model")
    if transferred:
        check_transfer_memory(target, engine.memory_limit)
    read_reference, record = None, {}
    if reference is not None and not transferred:
        data, grid, record = prepare_reference(reference, volume, target, register)
        read_reference = (data, grid)
    from mrsr_cli.data.geometry import bounding_box

    inside = None if mask is None else brain_mask_on(mask, target)
    out, info = super_resolve(volume, target, net, reference=read_reference, options=engine, input_fwhm=input_fwhm,
                              input_psf=input_psf, region=None if inside is None else bounding_box(inside))
    info.update(record)
    if inside is not None:
        import numpy as np

        from mrsr_cli.data.interpolate import resample

        np.copyto(out, resample(volume.data, volume.grid, target, order=3), where=~inside)
        info["Mask"] = {"Path": str(mask), "Fraction": round(float(inside.mean()), 4)}
    if transferred:
        def network(coarse, grid):  # the same network, for the transfer's check one scale down
            return super_resolve(coarse, grid, net, options=dataclasses.replace(engine, progress=False))[0]

        out, info["Guidance"] = transfer_reference(out, volume, target, reference, register, input_fwhm, input_psf, network)
    told = input_fwhm is not None or input_psf != "gaussian"
    out, consistency_record = make_consistent(out, volume, target, mode, fwhm_mm=input_fwhm, psf=input_psf,
                                              psf_known=knows_input_psf(net.meta, told), memory_limit=engine.memory_limit)
    if consistency_record:
        info["DataConsistency"] = consistency_record
    return out, info


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
