"""Adapt the network to the scan (``upscale --adapt STEPS``; beyond the papers, as zero-shot SR,
SMORE and ECLARE do): fine-tune a copy of it on the input itself before upscaling.

The input is its own high-resolution target: patches of it are degraded by the requested
factor (per input axis) the way the input is believed to have been made (``mrsr simulate``'s
PSF, or what ``--input-psf/--input-fwhm`` say: :func:`mrsr_cli.methods.safety.check_acquisition`),
splined back, and the network learns to restore them (loss: the per-patch PSNR gain over
spline, as training's ``psnr``).  It learns this scan's anatomy, contrast, noise and physical
scale, one octave coarser than the output.  Its PSF channels, if any, read what inference will
read (``psf_code``).

Thick slices (a 2-D scan upscaled along its slice axis only, :func:`thick_slice_axis`) are adapted
differently, from the axes the scan resolves (SMORE's idea, with this 3-D network): the network's
own output on the input is the image whose patches are degraded, along one of its in-plane axes,
by the slice profile and the slice factor, and turned so that this axis lies along the slice axis
(:func:`in_plane_pair`).  The degraded axis and its target are the scan's real in-plane data; the
network's own estimate of the slice axis stands in for the third, so that no axis of a training
patch is blurrier than inference shows it.  Measured before it was built (validation half,
(1,1,4), 300 steps): +0.31 and +0.39 dB over the same told command without adapting
(``benchmarks/experiments/33-blind/NOTES.md`` §10), where adapting one octave coarser gave −0.06
and +0.13 (§8).

Deterministic: patch batch ``i`` is drawn from ``numpy.random.default_rng([seed, i])`` and the
network's copy is trained from ``torch.manual_seed(seed)`` for a fixed number of steps (a
time budget would make the result depend on the machine's speed); the cost is estimated and
logged before it starts (:func:`adapt_seconds`).  Nothing is written: the adapted copy lives
for this command only, so an interrupted ``--adapt`` leaves no file behind.
"""

from __future__ import annotations

import copy
import logging
import math
import time

import numpy as np

from mrsr_cli.errors import UsageError

log = logging.getLogger("mrsr")

PATCH = 25  # voxels per side of a patch (the recipes')
BATCH = 8
LEARNING_RATE = 1e-5  # a gentle fine-tune: the prior the model learned is most of what it knows
TRAINING_FLOPS_PER_INFERENCE = 3.0  # forward + backward ≈ 3 forwards
MAX_STEPS = 100_000
# output-sized float32 volumes that adapting on thick slices holds on top of the method's own: the
# network's output, its normalised copy and its mirrored padding (up to 1.5 of it for a thin slab)
IN_PLANE_VOLUMES = 4


def check_adapt(steps) -> int:
    """``steps`` as an int, or a :class:`UsageError` unless it is in 1..:data:`MAX_STEPS`.

    >>> check_adapt(0)
    Traceback (most recent call last):
    ...
    mrsr_cli.errors.UsageError: --adapt must be a number of fine-tuning steps in 1..100000, got 0
    """
    try:
        value = int(steps)
    except (TypeError, ValueError):
        raise UsageError(f"--adapt must be a number of fine-tuning steps, got {steps!r}") from None
    if not 1 <= value <= MAX_STEPS or value != steps:
        raise UsageError(f"--adapt must be a number of fine-tuning steps in 1..{MAX_STEPS}, got {steps!r}")
    return value


def adapt_seconds(model, steps: int, device_type: str = "cpu", precision: str = "fp32", threads: int | None = None) -> float:
    """The estimated seconds of ``steps`` fine-tuning steps: FLOPs over the engine's throughput estimate."""
    from mrsr_cli.infer.tiling import throughput_gflops
    from mrsr_cli.models.graph import flops_per_voxel

    voxels = steps * BATCH * PATCH ** 3
    flops = TRAINING_FLOPS_PER_INFERENCE * voxels * flops_per_voxel(model.net.graph())
    return flops / (throughput_gflops(device_type, precision, threads) * 1e9)


def thick_slice_axis(factor) -> int | None:
    """The one axis that ``factor`` (per input axis) upscales when the other two are not upscaled
    (a 2-D scan's slice axis, its in-plane axes already at the output's resolution), else ``None``.

    >>> thick_slice_axis((1, 1, 4)), thick_slice_axis((1, 3, 1)), thick_slice_axis((2, 2, 4)), thick_slice_axis((1, 1, 1))
    (2, 1, None, None)
    """
    from mrsr_cli.degrade.simulate import THICK_AXIS_MARGIN

    coarse = np.flatnonzero(np.asarray(factor, dtype=np.float64) >= THICK_AXIS_MARGIN)
    return int(coarse[0]) if coarse.size == 1 else None


def in_plane_pair(patch: np.ndarray, axis: int, slice_axis: int, voxel_size, slice_factor: float, degrade: dict):
    """``(input, target)`` of one in-plane training pair from ``patch`` (of the image on the output
    grid, voxels of ``voxel_size`` mm): its in-plane ``axis`` degraded by ``slice_factor`` as the
    slices were (``degrade``: ``{"acquisition": "kspace"}`` or ``{"psf", "fwhm_scale"}`` with the
    slice axis's width in slice voxels at ``fwhm_scale[slice_axis]``), splined back, and both turned
    so that ``axis`` lies along ``slice_axis`` (the other two keep their order)."""
    from mrsr_cli.degrade.simulate import lowres_on_hr_grid

    along = np.ones(3)
    along[axis] = slice_factor
    if degrade.get("acquisition") == "kspace":
        settings = {"acquisition": "kspace"}
    else:  # the other axes at the width the input's own voxels get (simulate's: one voxel)
        scale = np.ones(3)
        scale[axis] = degrade["fwhm_scale"][slice_axis]
        settings = {"psf": degrade["psf"], "fwhm_scale": tuple(scale)}
    degraded = lowres_on_hr_grid(patch, voxel_size, along, **settings)
    return np.moveaxis(degraded, axis, slice_axis), np.moveaxis(patch, axis, slice_axis)


def adapt_model(model, volume, factor, steps: int, *, seed: int = 0, device=None, precision: str = "fp32",
                acquisition: dict | None = None, psf_code=None, progress=None, estimate=None):
    """A copy of ``model`` (:class:`~mrsr_cli.models.prepared.PreparedModel`) fine-tuned for ``steps``
    steps on ``volume`` (an :class:`~mrsr_cli.data.io.Volume`) degraded by ``factor`` (per input
    axis), mixed ``precision`` ``bf16`` or ``fp32`` as training runs, each patch degraded by
    ``acquisition`` (:func:`~mrsr_cli.methods.safety.check_acquisition`; default simulate's) and the
    PSF channels (if any) given ``psf_code`` (default: simulate's PSF, 0).  Thick slices
    (:func:`thick_slice_axis`) learn from in-plane pairs (:func:`in_plane_pair`) of
    ``estimate()``, the network's output on the output grid (in the input's units), when it is
    given; ``(model, the sidecar's Adapt record)``."""
    import dataclasses

    import torch

    from mrsr_cli.data.geometry import pad_to
    from mrsr_cli.degrade.simulate import lowres_on_hr_grid
    from mrsr_cli.evaluation.metrics import head_mask, patch_psnr_gain
    from mrsr_cli.models.channels import ArrayField, model_normalization_scale, network_inputs, psf_encoding

    steps = check_adapt(steps)
    device = device or torch.device("cpu")
    voxel = np.asarray(volume.grid.voxel_size, dtype=np.float64)
    output_voxel = voxel / np.asarray(factor, dtype=np.float64)
    factor = np.maximum(np.asarray(factor, dtype=np.float64), 1.0)
    scale = model_normalization_scale(model.meta, volume.data)
    data = np.asarray(volume.data, dtype=np.float32) / scale
    centres = np.argwhere(head_mask(data))
    if centres.size == 0:
        raise UsageError("--adapt found no head in the input to learn from")
    params = model.meta["params"]
    code = (psf_code if psf_code is not None else psf_encoding([1.0] * 3, ("gaussian",) * 3, factor)) \
        if params.get("psf_channels", 0) else None
    acquisition = dict(acquisition or {"psf": "gaussian", "fwhm_scale": (1.0, 1.0, 1.0)})
    # each axis at its own told width (a 2-D scan's slices with a gap are narrower than their spacing)
    degrade = {"acquisition": "kspace"} if acquisition.get("acquisition") == "kspace" else \
        {"psf": acquisition["psf"], "fwhm_scale": tuple(float(s) for s in np.broadcast_to(acquisition["fwhm_scale"], 3))}
    slice_axis = thick_slice_axis(factor) if estimate is not None else None
    if slice_axis is not None:  # the network's output is the image the pairs are cut from (module docstring)
        source = np.asarray(estimate(), dtype=np.float32) / scale
        centres = np.argwhere(head_mask(source))
        in_plane = [a for a in range(3) if a != slice_axis]
        # the slices' spacing in output voxels along each in-plane axis (the output may be coarser in plane too)
        spacing = {a: float(voxel[slice_axis] / output_voxel[a]) for a in in_plane}
    else:
        source, spacing = data, {}
    margin = int(math.ceil(6 * max([factor.max(), *spacing.values()]))) + 2
    size = PATCH + 2 * margin
    padded = np.pad(source, margin, mode="symmetric")
    highest = np.asarray(padded.shape) - size

    def batch(i: int):
        rng = np.random.default_rng([seed, i])
        inputs, targets = [], []
        for k in range(BATCH):
            start = np.clip(centres[rng.integers(len(centres))] + margin - size // 2, 0, np.maximum(highest, 0))
            hr = pad_to(padded[tuple(slice(int(s), int(s) + size) for s in start)], size)
            if slice_axis is None:
                ilr = lowres_on_hr_grid(hr, voxel, factor, **degrade)
            else:
                axis = in_plane[int(rng.integers(2))]
                ilr, hr = in_plane_pair(hr, axis, slice_axis, output_voxel, spacing[axis], degrade)
            inner = (slice(margin, margin + PATCH),) * 3
            ilr, hr = np.ascontiguousarray(ilr[inner]), np.ascontiguousarray(hr[inner])
            sources = network_inputs(params, ilr.shape, ArrayField(ilr), factor, None, voxel_size=voxel, psf=code)
            whole = tuple(slice(0, n) for n in ilr.shape)
            inputs.append(np.stack([s.read(whole) for s in sources]))
            targets.append(hr[None])
        return torch.from_numpy(np.stack(inputs)).to(device), torch.from_numpy(np.stack(targets)).to(device)

    torch.manual_seed(seed)
    net = copy.deepcopy(model.net).to(device).float()
    net.train()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=LEARNING_RATE)
    started, first, last = time.perf_counter(), None, None
    for i in range(steps):
        x, y = batch(i)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            prediction = net(x)
        loss = patch_psnr_gain(prediction, y, x[:, :1])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        last = float(loss.detach())
        first = last if first is None else first
        if progress is not None:
            progress(i + 1, steps)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    seconds = time.perf_counter() - started
    log.info("adapted to the input: %d steps in %.0f s, training loss %.3f -> %.3f dB", steps, seconds, first, last)
    record = {"Steps": steps, "PatchesPerStep": BATCH, "Seed": seed, "Seconds": round(seconds, 1),
              "LossFirstStepDB": round(first, 4), "LossLastStepDB": round(last, 4),
              "Degradation": dict(degrade), "LearningRate": LEARNING_RATE, "Precision": precision,
              "Pairs": "one octave coarser" if slice_axis is None else "in-plane (thick slices)"}
    if spacing:
        record["SliceSpacingInPlaneVoxels"] = [round(spacing[a], 4) for a in sorted(spacing)]
    return dataclasses.replace(model, net=net, name=f"{model.name} (adapted)"), record
