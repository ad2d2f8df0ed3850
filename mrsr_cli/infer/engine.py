"""The one inference engine: CNN super-resolution of a volume onto a target grid.

:func:`super_resolve` composes the three concerns that live in their own modules:
the channel contract (:mod:`mrsr_cli.models.channels`: normalisation read from the model's metadata,
factor maps, reference encoding), device and precision (:mod:`mrsr_cli.infer.device`), and exact
halo tiling with the flip self-ensemble over a predictor (:mod:`mrsr_cli.infer.tiling`).

Example::

    out, info = super_resolve(volume, target_grid, prepare_model("default"))
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from mrsr_cli.models.channels import (ArrayField, allowed_flips, encode_reference, foreground_box, model_normalization_scale,
                                     network_inputs)
from mrsr_cli.models.prepared import PreparedModel
from mrsr_cli.errors import UsageError
from mrsr_cli.infer.tiling import EngineOptions, run_self_ensemble

log = logging.getLogger("mrsr")


def super_resolve(volume, target, model: PreparedModel, *, reference=None, options: EngineOptions | None = None,
                  input_fwhm=None, input_psf: str = "gaussian", region=None):
    """CNN super-resolution of ``volume`` onto ``target`` (a :class:`~mrsr_cli.data.geometry.Grid`) by
    ``model`` (a :class:`~mrsr_cli.models.prepared.PreparedModel`).

    Spline-interpolates the input onto the target grid tile by tile, normalises intensities as
    the model's metadata says (:func:`~mrsr_cli.models.channels.model_normalization_scale`), runs the network (residual on the interpolated channel) and
    restores the input's intensity scale.  Models trained with factor input also get the
    per-axis upscaling factor (:func:`~mrsr_cli.data.geometry.scale_factor`, LR voxel / target voxel)
    as constant channels.  ``reference``: ``(data, grid)`` of a registered HR image of another
    contrast (:func:`mrsr_cli.methods.reference.prepare_reference`), an extra channel of guided
    models.  A model not trained with flips (:func:`~mrsr_cli.models.channels.allowed_flips`)
    runs one pass whatever ``options.ensemble`` says.
    ``input_fwhm`` (mm along the input's array axes; default its voxel size) and ``input_psf``
    (``gaussian`` or ``box``) describe how blurred the input is; models with PSF channels read
    them (:func:`input_psf_encoding`), others assume ``mrsr simulate``'s default and say so if
    told otherwise.  ``region``: a box of the target grid outside which the caller does not use the
    output (a mask's bounding box): the network runs only there (with the halo it needs), and the
    output outside it is not the network's.  Returns ``(output float32, info dict for the sidecar)``.
    """
    from mrsr_cli.data.geometry import scale_factor
    from mrsr_cli.data.interpolate import make_resampler

    options = options or EngineOptions()
    meta, name = model.meta, model.name
    n_refs = model.reference_channels
    if n_refs > 0 and reference is None:
        raise UsageError(f"model {name} is guided ({n_refs} reference channel): give a registered reference image")
    if n_refs == 0 and reference is not None:
        raise UsageError(f"model {name} takes no reference channel; drop the reference or use a guided model")
    if options.ensemble != 1 and not allowed_flips(meta):
        if options.ensemble is not None:
            log.warning("model %s was not trained with flips: running 1 pass instead of an ensemble of %d", name,
                        options.ensemble)
        options = dataclasses.replace(options, ensemble=1)
    scale = model_normalization_scale(meta, volume.data)
    factor = scale_factor(volume.grid, target)
    info: dict = {"ScaleFactor": [round(float(f), 4) for f in factor]} if model.factor_channels else {}
    ref_source = None
    if reference is not None:
        ref_data, ref_grid = reference
        ref_source = make_resampler(ref_data / model_normalization_scale(meta, ref_data), ref_grid, target, order=3)
        encoding = meta["params"].get("reference_encoding", "intensity")
        if encoding != "intensity":  # a whole-volume filter: encode once on the target grid, not per tile
            ref_source = ArrayField(encode_reference(ref_source.full(), encoding))
    psf = None
    if meta["params"].get("psf_channels", 0):
        psf = input_psf_encoding(volume.grid, target, input_fwhm, input_psf)
        fwhm = (0.0, 0.0, 0.0) if input_psf == "kspace" else volume.grid.voxel_size if input_fwhm is None else input_fwhm
        info["InputPSF"] = {"Shape": input_psf, "FWHM": [round(float(v), 4) for v in fwhm], "Encoding": psf}
    elif input_fwhm is not None or input_psf != "gaussian":
        log.warning("model %s assumes the input's PSF is mrsr simulate's (Gaussian, FWHM = input voxel): "
                    "--input-fwhm/--input-psf are ignored; a PSF-aware model reads them", name)
    sources = network_inputs(meta["params"], target.shape, make_resampler(volume.data / scale, volume.grid, target, order=3),
                             factor, ref_source, voxel_size=target.voxel_size, psf=psf)

    def read_input(box):
        return np.stack([s.read(box) for s in sources])

    foreground = foreground_box(sources, target.shape)
    if region is not None:  # only the region is wanted: outside it, what the background skip fills is discarded
        foreground = region if foreground is None else tuple(
            slice(max(f.start, r.start), max(min(f.stop, r.stop), max(f.start, r.start))) for f, r in zip(foreground, region))
    out, engine_info = run_self_ensemble(model.net, read_input, target.shape, options, foreground=foreground)
    out *= scale
    info.update({"Model": name, "ModelSha256": model.sha256, "ModelArchitecture": meta["architecture"], **engine_info})
    return out, info


def input_psf_encoding(source, target, fwhm_mm=None, shape: str = "gaussian") -> list[float]:
    """The PSF channels (:func:`~mrsr_cli.models.channels.psf_encoding`) along ``target``'s array axes for
    an input on grid ``source`` blurred by a ``shape`` PSF of ``fwhm_mm`` (mm along the source's
    array axes; default its voxel size, as ``mrsr simulate`` makes it).  Each target axis reads
    the source axis it runs along most (rotated grids: the nearest).

    >>> from mrsr_cli.data.geometry import Grid
    >>> lr, hr = Grid((8, 8, 4), np.diag([2.0, 2.0, 4.0, 1.0])), Grid((16, 16, 16), np.diag([1.0, 1.0, 1.0, 1.0]))
    >>> input_psf_encoding(lr, hr, (1.0, 2.0, 4.0))
    [-0.5, 0.0, 0.0]
    """
    from mrsr_cli.models.channels import psf_encoding
    from mrsr_cli.data.geometry import scale_factor, voxel_mapping
    from mrsr_cli.degrade.observation import check_input_psf

    from mrsr_cli.degrade.observation import KSPACE

    check_input_psf(shape, fwhm_mm)
    if shape == KSPACE:  # no blur below the Nyquist frequency: kspace.equivalent_gaussian_fwhm("none") = 0
        fwhm_mm, shape = (0.0, 0.0, 0.0), "gaussian"
    voxel = np.asarray(source.voxel_size, dtype=np.float64)
    fwhm = voxel if fwhm_mm is None else np.broadcast_to(np.asarray(fwhm_mm, dtype=np.float64), (3,))
    along = np.abs(voxel_mapping(source, target)[:3, :3]).argmax(axis=0)  # source axis of each target axis
    return psf_encoding((fwhm / voxel)[along], (shape,) * 3, scale_factor(source, target))
