"""Guidance by transfer: a registered HR image of another contrast, fitted to the input, lends its detail.

Co-registered contrasts of one head are locally linear functions of each other (a T2 is close
to ``a·T1 + b`` over a few millimetres, ``a`` and ``b`` varying slowly over the brain).  The
coefficients can be fitted to the measured low-resolution (LR) input ``y`` itself: degrade the
HR reference by the input's observation model ``A`` (its PSF, then sampling), regress ``y`` on
``A·ref`` in windows of the LR grid (a ridge-regularised local linear fit, as in He et al.'s
guided filter), and, since ``A`` is linear and the window local, use the same coefficients on
the HR grid: ``q = a↑·ref + b↑`` predicts the HR image with the reference's detail.
:func:`transfer` blends ``q`` into the network's output where the fit explains the input
(weight: the local ``R²``), and the data-consistency step that follows
(:mod:`mrsr_cli.consistency`) makes the result reproduce the input.  A wrong reference (another
head, noise, a gross misregistration) fits the input poorly: ``R²`` is low there and the
network's output is kept.  Nothing is learned, so any contrast pair works.

Parameters were fixed on the left half of SPM's avg152 T1/T2 pair (round 23 of
``benchmarks/experiments``): a window of :data:`WINDOW_RADIUS` LR voxels each side and a ridge
of :data:`RIDGE` times the input's squared 99.5th percentile.

Units and grids: intensities are the input's (the reference's units do not matter: ``a``
absorbs them); grids follow :class:`~mrsr_cli.geometry.Grid` (voxel→world affine, mm); the
reference must already lie on the output grid, and the output grid's axes must be parallel to
the input's (the separable model of :class:`~mrsr_cli.observation.ObservationModel`).

Example::

    >>> import numpy as np
    >>> from mrsr_cli.geometry import Grid, scaled_grid
    >>> from mrsr_cli.io import Volume
    >>> from mrsr_cli.observation import ObservationModel
    >>> hr = Grid((32, 32, 32), np.eye(4))
    >>> lr = scaled_grid(hr, (4, 4, 4))
    >>> t1 = np.random.default_rng(0).random((32, 32, 32), dtype=np.float32)
    >>> t2 = 1.0 - t1                       # an inverted contrast of the same head
    >>> A = ObservationModel(hr, lr)
    >>> y = Volume(A.forward(t2), lr)
    >>> blurry = np.full_like(t2, t2.mean())
    >>> better, info = transfer(blurry, y, t1, hr)
    >>> bool(np.abs(better - t2).mean() < 0.1 * np.abs(blurry - t2).mean())
    True
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("mrsr")

GUIDANCE_MODES = ("network", "transfer")
WINDOW_RADIUS = 2  # LR voxels each side of the fit's window (5³): radius 1 reads a noise reference's chance fits
RIDGE = 1e-3  # the fit's ridge, as a fraction of the input's squared 99.5th percentile
# A mean fit R² over the head below this: the reference explains little of the input, say so.
# Measured on the left (tuning) half of SPM's avg152 T2 at x3, x4, (1,1,4): its own T1 0.62-0.65,
# the T1 mirrored left-right 0.07-0.14, uniform noise 0.01-0.02.
POOR_FIT = 0.3
# Output-sized float32 volumes held at once: the network's output, the reference, the weight,
# the prediction and an interpolated coefficient, rounded up.
MEMORY_VOLUMES = 6
FOREGROUND = 0.1  # LR voxels brighter than this fraction of the 99.5th percentile: the head, for the mean R²


def parse_guidance(value: str | None) -> str:
    """``network`` (a guided model reads the reference) or ``transfer`` (:func:`transfer`).

    >>> parse_guidance(None), parse_guidance("transfer")
    ('network', 'transfer')
    """
    from .errors import UsageError

    if value is None:
        return "network"
    if value not in GUIDANCE_MODES:
        raise UsageError(f"--guidance must be one of {', '.join(GUIDANCE_MODES)}, got {value!r}")
    return value


def check_transfer_memory(target, memory_limit: int | None) -> None:
    """An :class:`~mrsr_cli.errors.MrsrError` when :func:`transfer` onto grid ``target`` needs
    more than ``memory_limit`` bytes (about :data:`MEMORY_VOLUMES` output-sized float32 volumes)."""
    from .errors import MrsrError

    needed = MEMORY_VOLUMES * 4 * int(np.prod(target.shape))
    if memory_limit is not None and needed > memory_limit:
        raise MrsrError(f"--guidance transfer needs about {needed / 2**20:.0f} MiB for this output grid, over the memory "
                        f"limit of {memory_limit / 2**20:.0f} MiB")


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


def lr_to_hr_matrices(model) -> list[np.ndarray]:
    """Per voxel axis, the dense (HR × LR) matrix of linear interpolation from the LR grid of
    ``model`` (:class:`~mrsr_cli.observation.ObservationModel`) at the HR voxel centres, the
    nearest LR value beyond the first and last LR centres; for
    :func:`~mrsr_cli.observation.apply_axis_matrices`."""
    matrices = []
    for axis, n_lr in enumerate(model.lr_grid.shape):
        coords = (np.arange(model.hr_grid.shape[axis]) - model._offset[axis]) / model._scale[axis]
        coords = np.clip(coords, 0, n_lr - 1)
        low = np.minimum(np.floor(coords).astype(int), max(n_lr - 2, 0))
        frac = (coords - low).astype(np.float32)
        matrix = np.zeros((len(coords), n_lr), dtype=np.float32)
        rows = np.arange(len(coords))
        matrix[rows, low] = 1.0 - frac
        if n_lr > 1:
            matrix[rows, low + 1] += frac
        matrices.append(matrix)
    return matrices


def transfer(x: np.ndarray, volume, reference: np.ndarray, target, *, fwhm_mm=None, psf: str = "gaussian",
             radius: int = WINDOW_RADIUS, ridge: float = RIDGE):
    """The upscaled ``x`` (grid ``target``) of input ``volume`` (an :class:`~mrsr_cli.io.Volume`)
    with the detail of ``reference`` (an HR image of another contrast, on ``target``) blended in
    where it explains the input: ``x + R²↑·(a↑·ref + b↑ − x)``, the local fit of ``volume.data``
    on the reference degraded by the input's PSF (``psf`` of ``fwhm_mm`` mm per input axis;
    default: the input voxel size, as ``mrsr simulate`` makes it).  Voxels outside the input's
    field of view are left as they are (``upscale`` writes zeros there).

    Returns ``(x float32, info)`` with ``info`` the sidecar's ``Guidance`` record: the method,
    the window and ridge, and the mean fit ``R²`` over the head (LR voxels brighter than
    :data:`FOREGROUND` of the 99.5th percentile).  Follow it with data consistency.
    """
    from .observation import ObservationModel, apply_axis_matrices

    model = ObservationModel(target, volume.grid, fwhm_mm, psf)
    y = np.asarray(volume.data, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    scale = float(np.percentile(y, 99.5)) or 1.0
    a, b, r2 = local_linear_fit(model.forward(reference), y, radius, ridge * scale * scale)
    head = y > FOREGROUND * scale
    mean_r2 = float(r2[head].mean()) if head.any() else 0.0
    to_hr = lr_to_hr_matrices(model)
    weight = apply_axis_matrices(r2, to_hr)
    for axis, outside in enumerate(model.outside_lr_fov()):
        index = [slice(None)] * 3
        index[axis] = outside
        weight[tuple(index)] = 0.0
    prediction = apply_axis_matrices(a, to_hr)
    prediction *= reference
    prediction += apply_axis_matrices(b, to_hr)
    prediction -= x
    prediction *= weight
    out = np.asarray(x, dtype=np.float32) + prediction
    if y.min() >= 0:  # a magnitude image stays non-negative
        np.clip(out, 0, None, out=out)
    if mean_r2 < POOR_FIT:
        log.warning("the reference explains the input poorly (mean local fit R² %.2f < %.2f): wrong subject, noise or "
                    "misregistration? Little of it is transferred; register the reference or drop it", mean_r2, POOR_FIT)
    log.info("guidance transfer: mean local fit R² %.3f", mean_r2)
    info = {"Method": "transfer", "WindowRadiusInputVoxels": radius, "Ridge": ridge, "MeanFitR2": round(mean_r2, 4)}
    return out.astype(np.float32, copy=False), info
