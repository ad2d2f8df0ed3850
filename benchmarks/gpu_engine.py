#!/usr/bin/env python3
"""The engine on a GPU (issue 36, run by benchmarks/gpu_check.sh): the paper's 20-layer 64-filter ReCNN
over a SIZE³ volume (goal: 256³ in ≤ 2 s on an H100-class GPU), whole volume in one call and streamed,
at each precision, with the peak GPU memory and the largest difference from the fp32 whole-volume
pass; and one short training epoch of that network.  Prints one JSON object per line.

Usage: python benchmarks/gpu_engine.py [--device cuda] [--size 256] [--train-steps 50] [--train-patch 32]
"""

import argparse
import json
import time

import numpy as np
import torch

from mrsr_cli.infer.tiling import EngineOptions, run_tiled
from mrsr_cli.models import ReCNN
from mrsr_cli.models.channels import ArrayField


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def engine_rows(device: str, size: int, precisions: list[str]):
    torch.manual_seed(0)
    net = ReCNN(layers=20, filters=64).eval()
    volume = np.random.default_rng(0).random((size,) * 3).astype(np.float32)
    source = ArrayField(volume)
    reference = None
    for precision in ["fp32", *precisions]:
        for tile, limit in ((0, None), (None, "4G")):  # whole volume in one call; streamed (4G: less than the whole needs)
            options = EngineOptions.from_cli(device=device, precision=precision, tile_size=tile, memory_limit=limit,
                                             progress=False, ensemble=1)
            run_tiled(net, lambda box: source.read(box)[None], volume.shape, options)  # warm-up: plans, cuDNN autotune
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            synchronize(device)
            started = time.perf_counter()
            out, info = run_tiled(net, lambda box: source.read(box)[None], volume.shape, options)
            synchronize(device)
            seconds = time.perf_counter() - started
            if reference is None:
                reference = out.copy()
            yield {"what": "engine", "size": size, "precision": precision, "engine": info["Engine"],
                   "seconds": round(seconds, 3), "peak_device_mib": info.get("PeakDeviceMemoryMiB"),
                   "max_abs_diff_vs_fp32_whole": float(np.abs(out - reference).max())}


def training_epoch(device: str, steps: int, patch: int = 32, batch: int = 16):
    """Adam steps of the 20-layer 64-filter ReCNN on random patches, bf16 autocast (the speed, not a model)."""
    torch.manual_seed(0)
    net = ReCNN(layers=20, filters=64).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 1, patch, patch, patch, device=device)
    target = x + 0.01 * torch.randn_like(x)
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16)
    for step in range(steps + 3):  # 3 warm-up steps
        if step == 3:
            synchronize(device)
            started = time.perf_counter()
        with autocast:
            loss = torch.nn.functional.l1_loss(net(x), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"what": "training", "steps": steps, "batch": batch, "patch": patch, "seconds": round(seconds, 3),
            "patches_per_second": round(steps * batch / seconds, 1), "loss": float(loss.detach())}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precisions", default="bf16,fp16")
    parser.add_argument("--train-steps", type=int, default=50)
    parser.add_argument("--train-patch", type=int, default=32)
    parser.add_argument("--train-batch", type=int, default=16)
    args = parser.parse_args()
    precisions = [p for p in args.precisions.split(",") if p]
    for row in engine_rows(args.device, args.size, precisions):
        print(json.dumps(row), flush=True)
    print(json.dumps(training_epoch(args.device, args.train_steps, args.train_patch, args.train_batch)), flush=True)


if __name__ == "__main__":
    main()
