"""Adapt the network to the scan (``upscale --adapt STEPS``; beyond the papers, as zero-shot SR,
SMORE and ECLARE do): fine-tune a copy of it on the input itself before upscaling.

The input is its own high-resolution target: patches of it are degraded by the requested
factor (per input axis) the way the input is believed to have been made (``mrsr simulate``'s
PSF, or what ``--input-psf/--input-fwhm`` say: :func:`mrsr_cli.methods.safety.check_acquisition`),
splined back, and the network learns to restore them (loss: the per-patch PSNR gain over
spline, as training's ``psnr``).  It learns this scan's anatomy, contrast, noise and physical
scale, one octave coarser than the output.  Its PSF channels, if any, read what inference will
read (``psf_code``).

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


def adapt_model(model, volume, factor, steps: int, *, seed: int = 0, device=None, precision: str = "fp32",
                acquisition: dict | None = None, psf_code=None, progress=None):
    """A copy of ``model`` (:class:`~mrsr_cli.models.prepared.PreparedModel`) fine-tuned for ``steps``
    steps on ``volume`` (an :class:`~mrsr_cli.data.io.Volume`) degraded by ``factor`` (per input
    axis), mixed ``precision`` ``bf16`` or ``fp32`` as training runs, each patch degraded by
    ``acquisition`` (:func:`~mrsr_cli.methods.safety.check_acquisition`; default simulate's) and the
    PSF channels (if any) given ``psf_code`` (default: simulate's PSF, 0);
    ``(model, the sidecar's Adapt record)``."""
    import dataclasses

    import torch

    from mrsr_cli.data.geometry import pad_to
    from mrsr_cli.degrade.simulate import lowres_on_hr_grid
    from mrsr_cli.evaluation.metrics import head_mask, patch_psnr_gain
    from mrsr_cli.models.channels import ArrayField, model_normalization_scale, network_inputs, psf_encoding

    steps = check_adapt(steps)
    device = device or torch.device("cpu")
    factor = np.maximum(np.asarray(factor, dtype=np.float64), 1.0)
    data = np.asarray(volume.data, dtype=np.float32) / model_normalization_scale(model.meta, volume.data)
    voxel = np.asarray(volume.grid.voxel_size, dtype=np.float64)
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
    margin = int(math.ceil(6 * factor.max())) + 2
    size = PATCH + 2 * margin
    padded = np.pad(data, margin, mode="symmetric")
    highest = np.asarray(padded.shape) - size

    def batch(i: int):
        rng = np.random.default_rng([seed, i])
        inputs, targets = [], []
        for k in range(BATCH):
            start = np.clip(centres[rng.integers(len(centres))] + margin - size // 2, 0, np.maximum(highest, 0))
            hr = pad_to(padded[tuple(slice(int(s), int(s) + size) for s in start)], size)
            ilr = lowres_on_hr_grid(hr, voxel, factor, **degrade)
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
              "Degradation": dict(degrade), "LearningRate": LEARNING_RATE, "Precision": precision}
    return dataclasses.replace(model, net=net, name=f"{model.name} (adapted)"), record
