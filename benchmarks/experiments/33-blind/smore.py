#!/usr/bin/env python3
"""Round 33 §9: in-plane self-training for thick slices (SMORE's idea with this 3-D network).

`upscale --adapt 300 --seed 0` with its adaptation replaced: training pairs come from the input's
sharp in-plane axes. Each patch of the input splined onto the output grid has one in-plane axis
(x or y) degraded by the told slice profile and the slice factor, and is turned so that this axis
lies along the network's slice axis. Compared with the same told command without adapting, on the
(1,1,4) cells of adapt_slices.py.

Usage: python benchmarks/experiments/33-blind/smore.py [VOLUME [STEPS]]    (default: the validation half, 300)
"""

import copy
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
import mrsr_cli.methods.cnn  # noqa: E402,F401
from adapt_slices import compare  # noqa: E402
from mrsr_cli.data.interpolate import resample  # noqa: E402
from mrsr_cli.degrade.simulate import lowres_on_hr_grid  # noqa: E402
from mrsr_cli.evaluation.metrics import head_mask, patch_psnr_gain  # noqa: E402
from mrsr_cli.infer.engine import input_psf_encoding  # noqa: E402
from mrsr_cli.methods.adapt import BATCH, LEARNING_RATE, PATCH  # noqa: E402
from mrsr_cli.models.channels import ArrayField, model_normalization_scale, network_inputs  # noqa: E402
from select_code import VALIDATION  # noqa: E402

cnn = sys.modules["mrsr_cli.methods.cnn"]  # the module: the package attribute of that name is the function

TURN = {0: (1, 2, 0), 1: (0, 2, 1)}  # degraded axis (x or y) -> a transpose that puts it last (the slice axis)


def spline_estimate(net, volume, target, engine, input_fwhm, input_psf):
    """The input on the output grid as inference feeds it to the network (§9)."""
    return resample(volume.data, volume.grid, target, order=3)


def in_plane_adapt(net, volume, target, steps, seed, engine, input_fwhm=None, input_psf="gaussian", estimate=spline_estimate):
    """``estimate(net, volume, target, engine, input_fwhm, input_psf)``: the image on the output grid
    whose patches are the targets (in the input's units)."""
    factor = cnn.input_axis_factor(volume, target)
    slices = float(factor[2])
    scale = model_normalization_scale(net.meta, volume.data)
    z = estimate(net, volume, target, engine, input_fwhm, input_psf) / scale
    code = input_psf_encoding(volume.grid, target, input_fwhm, input_psf)
    params = net.meta["params"]
    centres = np.argwhere(head_mask(z))
    margin = int(np.ceil(6 * slices)) + 2
    size = PATCH + 2 * margin
    padded = np.pad(z, margin, mode="symmetric")
    highest = np.asarray(padded.shape) - size

    def batch(i):
        rng = np.random.default_rng([seed, i])
        inputs, targets = [], []
        for _ in range(BATCH):
            start = np.clip(centres[rng.integers(len(centres))] + margin - size // 2, 0, np.maximum(highest, 0))
            hr = padded[tuple(slice(int(s), int(s) + size) for s in start)]
            axis = int(rng.integers(2))
            along = [1.0, 1.0, 1.0]
            along[axis] = slices
            ilr = lowres_on_hr_grid(hr, (1.0, 1.0, 1.0), along, psf=input_psf)
            inner = (slice(margin, margin + PATCH),) * 3
            ilr = np.ascontiguousarray(ilr[inner].transpose(TURN[axis]))
            hr = np.ascontiguousarray(hr[inner].transpose(TURN[axis]))
            sources = network_inputs(params, ilr.shape, ArrayField(ilr), factor, None,
                                     voxel_size=np.asarray(volume.grid.voxel_size), psf=code)
            whole = tuple(slice(0, n) for n in ilr.shape)
            inputs.append(np.stack([s.read(whole) for s in sources]))
            targets.append(hr[None])
        return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))

    torch.manual_seed(seed)
    model = copy.deepcopy(net.net).float()
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    for i in range(steps):
        x, y = batch(i)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = patch_psnr_gain(model(x), y, x[:, :1])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    import dataclasses

    return dataclasses.replace(net, net=model, name=f"{net.name} (in-plane adapted)"), {"Steps": steps, "InPlane": True}


STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    cnn.adapt_to_input = in_plane_adapt
    compare(volume, STEPS, "told + in-plane adapt", f"smore_{Path(volume).name.split('.')[0]}_{STEPS}.json")


if __name__ == "__main__":
    main()
