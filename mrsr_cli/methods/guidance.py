"""Guidance by transfer: a registered HR image of another contrast, fitted to the input, lends its detail.

Co-registered contrasts of one head are locally linear functions of each other (a T2 is close
to ``a·T1 + b`` over a few millimetres, ``a`` and ``b`` varying slowly over the brain).  The
coefficients can be fitted to the measured low-resolution (LR) input ``y`` itself: degrade the
HR reference by the input's observation model ``A`` (its PSF, then sampling), regress ``y`` on
``A·ref`` in windows of the LR grid (a ridge-regularised local linear fit, as in He et al.'s
guided filter), and, since ``A`` is linear and the window local, use the same coefficients on
the HR grid: ``q = a↑·ref + b↑`` predicts the HR image with the reference's detail.
:func:`transfer` blends ``q`` into the network's output, and the data-consistency step that
follows (:mod:`mrsr_cli.methods.consistency`) makes the result reproduce the input.

Where to trust ``q``: the fit can explain the input well on its grid and still put false edges
on the output grid, where the two contrasts relate differently across a boundary (background,
CSF) and the network was already right.  So the weight is the local ``R²`` times what a check
one scale down says (:func:`check_one_scale_down`, self-validation as in zero-shot SR): the
input, degraded once more, is upscaled back to its own grid by the network alone and with the
transfer, and the transfer is trusted, voxel by voxel, by the fraction of the network's error
it removed there, where the truth (the input) is known.  A wrong reference (another head,
noise, a gross misregistration) fits poorly or fails the check, and the network's output is
kept.  Nothing is learned, so any contrast pair works.

Parameters were fixed on the left half of SPM's avg152 T1/T2 pair (round 23 of
``benchmarks/experiments``): a window of :data:`WINDOW_RADIUS` LR voxels each side and a ridge
of :data:`RIDGE` times the input's squared 99.5th percentile; the check's form on that half and
the MNI152NLin6Asym validation half (round 24).

Units and grids: intensities are the input's (the reference's units do not matter: ``a``
absorbs them); grids follow :class:`~mrsr_cli.data.geometry.Grid` (voxel→world affine, mm); the
reference must already lie on the output grid, and the output grid's axes must be parallel to
the input's (the separable model of :class:`~mrsr_cli.degrade.observation.ObservationModel`).

Example (a spline stands in for the network)::

    >>> import numpy as np
    >>> from scipy import ndimage
    >>> from mrsr_cli.data.geometry import Grid, scaled_grid
    >>> from mrsr_cli.data.interpolate import resample
    >>> from mrsr_cli.data.io import Volume
    >>> from mrsr_cli.degrade.observation import ObservationModel
    >>> hr = Grid((48, 48, 48), np.eye(4))
    >>> lr = scaled_grid(hr, (3, 3, 3))
    >>> blobs = ndimage.gaussian_filter(np.random.default_rng(0).random((48, 48, 48), dtype=np.float32), 3)
    >>> t1 = ndimage.gaussian_filter((blobs > np.median(blobs)).astype(np.float32), 0.7)  # tissue with edges
    >>> t2 = 1.0 - t1                       # an inverted contrast of the same head
    >>> y = Volume(ObservationModel(hr, lr).forward(t2), lr.affine)
    >>> def spline(volume, grid):
    ...     return resample(volume.data, volume.grid, grid, order=3)
    >>> x = spline(y, hr)
    >>> better, info = transfer(x, y, t1, hr, upscale=spline)
    >>> bool(np.abs(better - t2).mean() < 0.2 * np.abs(x - t2).mean())
    True
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("mrsr")

GUIDANCE_MODES = ("auto", "network", "transfer")
WINDOW_RADIUS = 2  # LR voxels each side of the fit's window (5³): radius 1 reads a noise reference's chance fits
RIDGE = 1e-3  # the fit's ridge, as a fraction of the input's squared 99.5th percentile
# A mean fit R² over the head below this: the reference explains little of the input, say so.
# Measured on the left (tuning) half of SPM's avg152 T2 at x3, x4, (1,1,4): its own T1 0.62-0.65,
# the T1 mirrored left-right 0.07-0.14, uniform noise 0.01-0.02.
POOR_FIT = 0.3
# Output-sized float32 volumes held at once: the network's output, the reference, the weight,
# the prediction and an interpolated coefficient, rounded up.
TRANSFER_VOLUMES = 6
# The check one scale down degrades the input by the output's factor, at most this per axis: an input
# at x4 (SPM's 8 mm) degraded by 4 again leaves too few voxels to fit or upscale.
CHECK_FACTOR_CAP = 2.0
MIN_CHECK_VOXELS = 4  # fewer voxels than this along an axis of the coarser grid: nothing to check on
FOREGROUND = 0.1  # LR voxels brighter than this fraction of the 99.5th percentile: the head, for the mean R²


def parse_guidance(value: str | None) -> str:
    """``auto`` (the default: a guided model reads the reference, any other model's output gets
    it by transfer), ``network`` (a guided model reads it) or ``transfer`` (:func:`transfer`).

    >>> parse_guidance(None), parse_guidance("transfer")
    ('auto', 'transfer')
    """
    from mrsr_cli.errors import UsageError

    if value is None:
        return "auto"
    if value not in GUIDANCE_MODES:
        raise UsageError(f"--guidance must be one of {', '.join(GUIDANCE_MODES)}, got {value!r}")
    return value


def check_transfer_memory(target, memory_limit: int | None) -> None:
    """An :class:`~mrsr_cli.errors.MrsrError` when :func:`transfer` onto grid ``target`` needs
    more than ``memory_limit`` bytes (about :data:`TRANSFER_VOLUMES` output-sized float32 volumes)."""
    from mrsr_cli.errors import MrsrError
    from mrsr_cli.budget import over_memory_limit

    said = over_memory_limit("--guidance transfer", TRANSFER_VOLUMES, target.shape, memory_limit)
    if said:
        raise MrsrError(said)


def local_linear_fit(guide: np.ndarray, target: np.ndarray, radius: int = WINDOW_RADIUS, ridge: float = 0.0):
    """Per voxel, the ridge regression ``target ≈ a·guide + b`` over the cube of ``radius``
    voxels each side (mirrored at the edges), then averaged over the same cube as the guided
    filter does.  Returns float32 ``(a, b, r2)``: ``r2`` the fit's squared correlation, in [0, 1].

    >>> g = np.random.default_rng(1).random((9, 9, 9))
    >>> a, b, r2 = local_linear_fit(g, 3 * g + 1, radius=1)
    >>> bool(np.allclose(a, 3, atol=1e-4) and np.allclose(b, 1, atol=1e-4) and r2.min() > 0.999)
    True
    """
    from scipy import ndimage

    size = 2 * radius + 1

    def mean(v):
        return ndimage.uniform_filter(np.asarray(v, dtype=np.float64), size, mode="reflect")

    g, t = np.asarray(guide, dtype=np.float64), np.asarray(target, dtype=np.float64)
    mg, mt = mean(g), mean(t)
    var_g, var_t, cov = mean(g * g) - mg * mg, mean(t * t) - mt * mt, mean(g * t) - mg * mt
    a = cov / (np.maximum(var_g, 0.0) + ridge + 1e-30)
    b = mt - a * mg
    r2 = np.clip(cov * cov / np.maximum(var_g * var_t, 1e-30), 0.0, 1.0)
    return mean(a).astype(np.float32), mean(b).astype(np.float32), np.clip(mean(r2), 0.0, 1.0).astype(np.float32)


def _blend(x: np.ndarray, volume, reference: np.ndarray, model, radius: int, ridge: float, trust=None):
    """``x + (R²·trust)↑ · (a↑·ref + b↑ − x)`` on ``model``'s HR grid, the fit of ``volume.data``
    on ``A·reference`` (``A`` = ``model``); ``trust`` (input grid, default 1) scales the weight.
    Returns ``(out float32, mean R² over the head, mean weight over the head)``."""
    from mrsr_cli.degrade.observation import apply_axis_matrices

    y = np.asarray(volume.data, dtype=np.float32)
    scale = float(np.percentile(y, 99.5)) or 1.0
    a, b, r2 = local_linear_fit(model.forward(reference), y, radius, ridge * scale * scale)
    weight_lr = r2 if trust is None else r2 * trust
    head = y > FOREGROUND * scale
    means = (float(r2[head].mean()), float(weight_lr[head].mean())) if head.any() else (0.0, 0.0)
    to_hr = model.upsampling_matrices(1)  # linear; zero outside the input's view, so the weight is too
    weight = apply_axis_matrices(weight_lr, to_hr)
    prediction = apply_axis_matrices(a, to_hr)
    prediction *= reference
    prediction += apply_axis_matrices(b, to_hr)
    prediction -= x
    prediction *= weight
    out = np.asarray(x, dtype=np.float32) + prediction
    if y.min() >= 0:  # a magnitude image stays non-negative
        np.clip(out, 0, None, out=out)
    return out, *means


def check_one_scale_down(volume, reference_on_input: np.ndarray, factor, upscale, radius: int = WINDOW_RADIUS,
                         ridge: float = RIDGE) -> np.ndarray | None:
    """Where the transfer beats the network one scale down, on the input's own grid, where the
    truth (the input) is known: the input degraded once more by ``factor`` (per input axis,
    capped at :data:`CHECK_FACTOR_CAP`, with ``mrsr simulate``'s PSF), upscaled back by the
    network (``upscale(volume, grid) -> array``) and by the network plus the transfer of
    ``reference_on_input`` (the reference degraded to the input grid), both then made
    consistent.  Returns, per input voxel, the fraction of the network's local squared error
    (windows of ``radius``) that the transfer removes, in [0, 1]; ``None`` when the coarser
    grid would have fewer than :data:`MIN_CHECK_VOXELS` voxels along an axis."""
    from scipy import ndimage

    from mrsr_cli.methods.consistency import make_consistent
    from mrsr_cli.data.geometry import scaled_grid
    from mrsr_cli.data.io import Volume
    from mrsr_cli.degrade.observation import ObservationModel

    step = tuple(float(min(max(f, 1.0), CHECK_FACTOR_CAP)) for f in factor)
    coarse_grid = scaled_grid(volume.grid, step)
    if min(coarse_grid.shape) < MIN_CHECK_VOXELS:
        return None
    down = ObservationModel(volume.grid, coarse_grid)
    coarse = Volume(down.forward(volume.data), coarse_grid.affine)
    network = upscale(coarse, volume.grid)
    guided, _, _ = _blend(network, coarse, reference_on_input, down, radius, ridge)
    network, _ = make_consistent(network, coarse, volume.grid, "auto")
    guided, _ = make_consistent(guided, coarse, volume.grid, "auto")
    size = 2 * radius + 1
    truth = np.asarray(volume.data, dtype=np.float64)
    e_network = ndimage.uniform_filter((network - truth) ** 2, size, mode="reflect")
    e_guided = ndimage.uniform_filter((guided - truth) ** 2, size, mode="reflect")
    return np.clip((e_network - e_guided) / np.maximum(e_network, 1e-30), 0.0, 1.0).astype(np.float32)


def transfer(x: np.ndarray, volume, reference: np.ndarray, target, *, upscale, fwhm_mm=None, psf: str = "gaussian",
             radius: int = WINDOW_RADIUS, ridge: float = RIDGE):
    """The upscaled ``x`` (the network's output on grid ``target``, before data consistency) of
    input ``volume`` (an :class:`~mrsr_cli.data.io.Volume`) with the detail of ``reference`` (an HR
    image of another contrast, on ``target``) blended in where it explains the input and beat
    the network one scale down: ``x + (R²·trust)↑ · (a↑·ref + b↑ − x)``, the local fit of
    ``volume.data`` on the reference degraded by the input's PSF (``psf`` of ``fwhm_mm`` mm per
    input axis; default: the input voxel size, as ``mrsr simulate`` makes it), ``trust`` from
    :func:`check_one_scale_down` with ``upscale(volume, grid) -> array``, the network that made
    ``x``.  Voxels outside the input's field of view are left as they are (``upscale`` writes
    zeros there).  An input too small to check is left as it is, with a warning.

    Returns ``(x float32, info)`` with ``info`` the sidecar's ``Guidance`` record: the method,
    the window and ridge, the mean fit ``R²`` and the mean weight used, over the head (LR
    voxels brighter than :data:`FOREGROUND` of the 99.5th percentile).  Follow it with data
    consistency.
    """
    from mrsr_cli.degrade.observation import input_model

    model = input_model(target, volume.grid, fwhm_mm, psf)
    reference = np.asarray(reference, dtype=np.float32)
    info = {"Method": "transfer", "WindowRadiusInputVoxels": radius, "Ridge": ridge}
    trust = check_one_scale_down(volume, model.forward(reference), model.factor, upscale, radius, ridge)
    if trust is None:
        log.warning("guidance transfer skipped: the input is too small to check the transfer one scale down")
        return np.asarray(x, dtype=np.float32), {**info, "Skipped": "input too small to check"}
    out, mean_r2, mean_weight = _blend(x, volume, reference, model, radius, ridge, trust)
    if mean_r2 < POOR_FIT:
        log.warning("the reference explains the input poorly (mean local fit R² %.2f < %.2f): wrong subject, noise or "
                    "misregistration? Little of it is transferred; register the reference or drop it", mean_r2, POOR_FIT)
    log.info("guidance transfer: mean local fit R² %.3f, mean weight %.3f", mean_r2, mean_weight)
    return out.astype(np.float32, copy=False), {**info, "MeanFitR2": round(mean_r2, 4), "MeanWeight": round(mean_weight, 4)}
