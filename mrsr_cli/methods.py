"""Super-resolution methods for ``mrsr upscale --method``: a registry of functions.

Each method is ``fn(volume, target_grid, **options) -> (data, info)``: ``volume`` an
:class:`~mrsr_cli.io.Volume`, ``target_grid`` the output :class:`~mrsr_cli.geometry.Grid`,
``data`` float32 on that grid (same intensity scale as the input), ``info`` a dict of
BIDS-style keys for the JSON sidecar.  The keywords a method accepts are its options; giving
it one it does not take is a usage error (:func:`run_method`), so ``--model`` with
``--method spline`` is refused without any per-method check in the CLI.

Adding a method is one function plus one line: write ``def my_method(volume, target, *,
my_option=...)`` (in its own module if it is large) and add ``"my-method": my_method`` to
:data:`METHODS`; give its options CLI flags in ``cli.upscale_cmd`` and traits in
``interfaces.UpscaleInputSpec`` (the option-parity test says when one is missing).

Example::

    >>> sorted(METHODS), method_options("spline")
    (['cnn', 'lrtv', 'spline'], ('order',))
"""

from __future__ import annotations

import inspect
import logging

from .errors import UsageError


def spline(volume, target, *, order: int = 3):
    """B-spline interpolation of order ``order`` (1-5) onto ``target`` (:mod:`mrsr_cli.interpolate`)."""
    from .interpolate import resample

    if not 1 <= order <= 5:
        raise UsageError(f"spline order must be 1..5, got {order}")
    return resample(volume.data, volume.grid, target, order=order), {"SplineOrder": order}


def cnn(volume, target, *, model: str | None = None, reference=None, register: bool = False, ensemble: int | None = None,
        input_fwhm=None, input_psf: str = "gaussian", consistency="auto", guidance: str | None = None, engine=None):
    """The network of ``model`` (default: the builtin) through the engine (:func:`mrsr_cli.engine.super_resolve`),
    then made consistent with the input under ``consistency`` (``auto``, ``off`` or a number of
    iterations: :func:`mrsr_cli.consistency.make_consistent`, with the same input PSF; ``auto``
    runs only when that PSF is known, :func:`~mrsr_cli.consistency.knows_input_psf`);
    ``reference``: path of a registered HR image of another contrast, aligned first when
    ``register``, read by a guided model (``guidance="network"``) or fitted to the input and
    blended into an unguided network's output before the consistency step
    (``guidance="transfer"``, :func:`mrsr_cli.guidance.transfer`); ``guidance="auto"`` (the
    default) does the first for a guided ``model`` and the second for any other, the default
    model included; ``ensemble``: flip self-ensemble passes (default: the engine's);
    ``input_fwhm`` (mm per input axis; default its voxel size) and ``input_psf``: how blurred
    the input is, for PSF-aware models, the consistency step and the transfer; ``engine``:
    :class:`~mrsr_cli.tiling.EngineOptions`."""
    import dataclasses

    from .channels import model_channels
    from .consistency import knows_input_psf, make_consistent, parse_mode
    from .engine import super_resolve
    from .guidance import check_transfer_memory, parse_guidance
    from .models.store import read_header
    from .tiling import EngineOptions
    from .zoo import resolve_model

    if register and reference is None:
        raise UsageError("registering the reference needs a reference")
    engine = engine or EngineOptions()
    if ensemble is not None:
        engine = dataclasses.replace(engine, ensemble=ensemble)
    mode = parse_mode(consistency)  # usage errors before the network runs
    guidance = parse_guidance(guidance)
    if guidance != "auto" and reference is None:
        raise UsageError(f"--guidance {guidance} needs --reference")
    # With no --model, "network" means the builtin guided model and "auto" the default one.
    path, name = resolve_model(model, guided=reference is not None and guidance == "network")
    meta, _ = read_header(path)
    if reference is not None and guidance == "auto":  # a guided model reads it; any other (the default one) transfers it
        guidance = "network" if model_channels(meta)[1] else "transfer"
    transferred = reference is not None and guidance == "transfer"
    if transferred and model_channels(meta)[1]:
        raise UsageError(f"--guidance transfer runs an unguided network, and model {name} is guided: "
                         "use --guidance network, or an unguided model")
    if transferred:
        check_transfer_memory(target, engine.memory_limit)
    out, info = super_resolve(volume, target, model=model, reference=None if transferred else reference,
                              register=register and not transferred, options=engine, input_fwhm=input_fwhm,
                              input_psf=input_psf)
    if transferred:
        def network(coarse, grid):  # the same network, for the transfer's check one scale down
            return super_resolve(coarse, grid, model=model, options=dataclasses.replace(engine, progress=False))[0]

        out, info["Guidance"] = _transfer(out, volume, target, reference, register, input_fwhm, input_psf, network)
    told = input_fwhm is not None or input_psf != "gaussian"
    out, record = make_consistent(out, volume, target, mode, fwhm_mm=input_fwhm, psf=input_psf,
                                  psf_known=knows_input_psf(meta, told), memory_limit=engine.memory_limit)
    if record:
        info["DataConsistency"] = record
    return out, info


def _transfer(out, volume, target, reference, register, input_fwhm, input_psf, network):
    """:func:`mrsr_cli.guidance.transfer` of ``reference`` (a path; registered first when
    ``register``) into ``out``, checked with ``network`` one scale down; ``(out, the sidecar's
    Guidance record)``, the output unchanged (with a warning) when the output grid's axes are
    not parallel to the input's."""
    import numpy as np

    from .engine import _prepare_reference
    from .geometry import axis_aligned_mapping, voxel_mapping
    from .guidance import transfer
    from .interpolate import resample

    if axis_aligned_mapping(voxel_mapping(target, volume.grid)) is None:
        logging.getLogger("mrsr").warning("guidance transfer skipped: the output grid's axes are not parallel to the input's")
        return out, {"Method": "transfer", "Skipped": "output axes not parallel to the input's"}
    data, grid, record = _prepare_reference(reference, volume, target, register)
    on_target = data if grid.shape == target.shape and np.allclose(grid.affine, target.affine, atol=1e-6) \
        else resample(data, grid, target, order=3)
    out, info = transfer(out, volume, on_target, target, upscale=network, fwhm_mm=input_fwhm, psf=input_psf)
    return out, {**info, **record}


def lrtv(volume, target, *, lrtv_iterations: int | None = None, lrtv_lambda_tv: float | None = None,
         lrtv_lambda_rank: float | None = None, input_fwhm=None, input_psf: str = "gaussian", engine=None):
    """Low-rank + total-variation inversion of the observation model (Shi et al. 2015;
    :func:`mrsr_cli.lrtv.lrtv`, whose defaults apply to the options left ``None``), whose PSF is
    ``input_psf`` of ``input_fwhm`` mm per input axis (default: the input voxel size); ``engine``
    gives the memory limit and whether to show progress."""
    from . import lrtv as module

    options = {k: v for k, v in (("lrtv_iterations", lrtv_iterations), ("lrtv_lambda_tv", lrtv_lambda_tv),
                                 ("lrtv_lambda_rank", lrtv_lambda_rank)) if v is not None}
    return module.lrtv(volume, target, memory_limit=engine.memory_limit if engine else None,
                       progress=engine.progress if engine else True, fwhm_mm=input_fwhm, psf=input_psf, **options)


METHODS = {"cnn": cnn, "spline": spline, "lrtv": lrtv}


def method_options(name: str) -> tuple[str, ...]:
    """The option names a method accepts."""
    params = inspect.signature(_lookup(name)).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)


def check_options(name: str, options) -> None:
    """A :class:`UsageError` for the first of ``options`` (names) that method ``name`` does not take."""
    accepted = method_options(name)
    for option in options:
        if option not in accepted:
            raise UsageError(f"{option} does not apply to method {name} (it takes: {', '.join(accepted) or 'nothing'})")


def run_method(name: str, volume, target, **options):
    """``METHODS[name](volume, target, **options)`` after checking that it takes every option given."""
    check_options(name, options)
    return _lookup(name)(volume, target, **options)


def _lookup(name: str):
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r} (known: {', '.join(METHODS)})") from None
