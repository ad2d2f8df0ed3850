"""The safety net: where the network loses to spline one scale down, blend its output towards spline.

A network can lose to cubic spline on an input unlike what it trained on (its anatomy, noise,
contrast or scale).  On the input's own grid the truth is known: the input, degraded once more
by the requested factor the way the input is believed to have been made (the acquisition
``upscale`` assumes or was told: ``mrsr simulate``'s PSF, or k-space truncation for
``--input-psf kspace``), upscaled back by the whole pipeline (network and data consistency) and
by spline, can be compared with itself: ``ratio`` = the pipeline's local squared error over
spline's (windows of ``2·radius + 1`` input voxels).  The weight of the pipeline is 1 where
``ratio <= KEEP_RATIO`` (it clearly wins), 0 where ``ratio >= 1`` (it loses), linear between;
carried to the output grid linearly, the output is ``spline + weight · (output − spline)``.

This assumes the pipeline behaves one scale down as it does at the requested scale (as the
guidance transfer's check does).  It cannot catch a wrong belief about the acquisition: one
scale down the input is degraded as believed, so a network that over-sharpens a scanner's
image it takes for ``simulate``'s passes the check (the input's PSF could not be told from the
image itself: benchmarks/experiments/33-blind/NOTES.md).  Units: intensities are the input's; the sidecar's
``SafetyNet`` record gives the fractions of the head (input voxels brighter than
:data:`FOREGROUND` of the 99.5th percentile) kept and blended.
"""

from __future__ import annotations

import logging

import numpy as np

from mrsr_cli.errors import UsageError

log = logging.getLogger("mrsr")

KEEP_RATIO = 0.9  # the network's local error at most this fraction of spline's: kept whole (0.46 dB better)
WINDOW_RADIUS = 4  # input voxels
CHECK_FACTOR_CAP = 3.0  # one scale down by at most this per axis (a coarser check image says little)
MIN_CHECK_VOXELS = 8  # the check's coarse image needs this many voxels per axis
FOREGROUND = 0.1
WARN_FRACTION = 0.05  # a warning when more of the head than this is blended towards spline
SLAB_VALUES = 1 << 22  # output voxels blended at a time (16 MiB of float32)
MODES = ("auto", "off")


def parse_safety_net(value: str | None) -> str:
    """``auto`` (check, and blend where the network loses) or ``off``.

    >>> parse_safety_net("off")
    'off'
    """
    value = "auto" if value is None else value
    if value not in MODES:
        raise UsageError(f"--safety-net must be one of {', '.join(MODES)}, got {value!r}")
    return value


def check_acquisition(input_psf: str = "gaussian", fwhm_mm=None, voxel_size=None) -> dict:
    """The keywords of :func:`mrsr_cli.degrade.simulate.simulate_lowres` that degrade the input one
    scale down as it is believed to have been made: k-space truncation, or the PSF shape at the
    same width in voxels (default one voxel, ``mrsr simulate``'s).

    >>> check_acquisition("kspace"), check_acquisition("box", (1.0, 1.0, 1.0), (2.0, 2.0, 2.0))
    ({'acquisition': 'kspace'}, {'psf': 'box', 'fwhm_scale': (0.5, 0.5, 0.5)})
    """
    if input_psf == "kspace":
        return {"acquisition": "kspace"}
    scale = (1.0, 1.0, 1.0) if fwhm_mm is None else tuple(float(f) / float(v) for f, v in zip(fwhm_mm, voxel_size))
    return {"psf": input_psf, "fwhm_scale": scale}


def network_weight(volume, factor, upscale, acquisition: dict | None = None,
                   radius: int = WINDOW_RADIUS) -> np.ndarray | None:
    """Per input voxel, the pipeline's weight in [0, 1] (the module's docstring): ``volume`` an
    :class:`~mrsr_cli.data.io.Volume`, ``factor`` per input axis, ``upscale(volume, grid) ->
    array`` the pipeline, ``acquisition`` from :func:`check_acquisition` (default simulate's).
    ``None`` when the coarser grid would be too small to check."""
    from scipy import ndimage

    from mrsr_cli.data.geometry import scaled_grid
    from mrsr_cli.data.interpolate import resample
    from mrsr_cli.data.io import Volume
    from mrsr_cli.degrade.simulate import simulate_lowres

    step = tuple(float(min(max(f, 1.0), CHECK_FACTOR_CAP)) for f in factor)
    if min(scaled_grid(volume.grid, step).shape) < MIN_CHECK_VOXELS:
        return None
    truth = np.asarray(volume.data, dtype=np.float32)
    settings = dict(acquisition or {})
    if "fwhm_scale" in settings:  # the PSF's width in coarse voxels, in mm
        coarse_voxel = np.asarray(volume.grid.voxel_size, dtype=np.float64) * np.asarray(step)
        settings["fwhm"] = tuple(coarse_voxel * np.asarray(settings.pop("fwhm_scale")))
    coarse, coarse_grid, _ = simulate_lowres(truth, volume.grid, factor=step, **settings)
    network = upscale(Volume(coarse, coarse_grid.affine), volume.grid)
    spline = resample(coarse, coarse_grid, volume.grid, order=3)
    size = 2 * radius + 1
    e_network = ndimage.uniform_filter((network - truth) ** 2, size, mode="reflect")
    e_spline = ndimage.uniform_filter((spline - truth) ** 2, size, mode="reflect")
    ratio = e_network / np.maximum(e_spline, 1e-12 * float(truth.max()) ** 2 + 1e-30)
    return np.clip((1.0 - ratio) / (1.0 - KEEP_RATIO), 0.0, 1.0).astype(np.float32)


def apply_safety_net(out: np.ndarray, volume, target, upscale, factor,
                     acquisition: dict | None = None) -> tuple[np.ndarray, dict]:
    """``out`` (the pipeline's output on ``target``) blended towards the spline interpolation of
    ``volume`` where :func:`network_weight` is below 1; ``(out, the sidecar's SafetyNet record)``.
    The output is unchanged (with a note in the record) when the input is too small to check."""
    from mrsr_cli.data.interpolate import make_resampler

    acquisition = acquisition or check_acquisition()
    info = {"CheckedWith": {k: list(v) if isinstance(v, tuple) else v for k, v in acquisition.items()},
            "WindowRadiusInputVoxels": WINDOW_RADIUS, "KeepRatio": KEEP_RATIO}
    weight = network_weight(volume, factor, upscale, acquisition)
    if weight is None:
        log.info("safety net skipped: the input is too small to check one scale down")
        return out, {**info, "Skipped": "input too small to check"}
    data = np.asarray(volume.data, dtype=np.float32)
    head = data > FOREGROUND * float(np.percentile(data, 99.5))
    head_voxels = max(int(head.sum()), 1)
    blended = float(((weight < 1.0) & head).sum()) / head_voxels
    info.update({"NetworkWeightMean": round(float(weight[head].mean()) if head.any() else 1.0, 4),
                 "BlendedFraction": round(blended, 4)})
    if blended == 0.0:
        return out, info
    # out + (1 − weight)·(spline − out), a slab of the output at a time: two output-sized volumes
    # more would break the memory budget of a large output (a whole head at 0.5 mm)
    out = np.asarray(out, dtype=np.float32)
    spline = make_resampler(data, volume.grid, target, order=3)
    loss = make_resampler(1.0 - weight, volume.grid, target, order=1)
    step = max(1, SLAB_VALUES // max(target.shape[1] * target.shape[2], 1))
    for start in range(0, target.shape[0], step):
        box = (slice(start, min(start + step, target.shape[0])), slice(0, target.shape[1]), slice(0, target.shape[2]))
        part = out[box]
        part += loss.read(box) * (spline.read(box) - part)
    if blended > WARN_FRACTION:
        log.warning("the network lost to spline one scale down in %.0f %% of the head: blended towards spline there "
                    "(sidecar SafetyNet; --safety-net off keeps the network's output)", 100 * blended)
    return out.astype(np.float32, copy=False), info
