#!/usr/bin/env python3
"""Training throughput (issue 23): model FLOP rate of a training step as a fraction of the
machine's single-conv ceiling, and where a step's time goes (patch sampling vs the network).

For the default ReCNN (10 × 32) and the EDSR-3D of the same size (4 blocks × 32), fp32 and bf16,
with the default recipe's step (batch 16, patch 25³, 4 input channels: the ILR image and 3 factor
maps; factors from the default's mix; augment flip,permute,intensity,affine,sharpness; psnr loss):

* model FLOPs per step = 3 × forward FLOPs (forward + backward ≈ 3×), forward = Σ over convs of
  2·k³·c_in·c_out per voxel × 16 × 25³;
* ceiling = one 32→32 3³ conv3d forward over 16 × 25³ voxels (channels-last, same precision) —
  the best rate the machine reaches on this network's widest layer and this patch shape;
* time split: patch sampling (numpy/scipy, `PatchSampler.batch`) and the network step (forward,
  loss, backward, Adam) measured separately over ITERATIONS steps after a warm-up.

Writes the 'throughput' section of docs/benchmarks.md.  Usage: python benchmarks/training_throughput.py
"""

import json
import time

import numpy as np
import torch

from _common import DATA, stamp, write_section

BATCH, PATCH, CHANNELS, ITERATIONS = 16, 25, 4, 6
torch.set_num_threads(2)


def conv_flops(net) -> int:
    """Forward FLOPs per voxel: 2·k³·c_in·c_out summed over the network's convolutions."""
    return sum(2 * m.kernel_size[0] ** 3 * m.in_channels * m.out_channels for m in net.modules()
               if isinstance(m, torch.nn.Conv3d))


def ceiling(precision: str) -> float:
    conv = torch.nn.Conv3d(32, 32, 3, padding=1).to(memory_format=torch.channels_last_3d)
    x = torch.randn(BATCH, 32, PATCH, PATCH, PATCH).to(memory_format=torch.channels_last_3d)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    times = []
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
        conv(x)
        for _ in range(10):  # the best of 10: the ceiling is what the machine can do
            t0 = time.perf_counter()
            conv(x)
            times.append(time.perf_counter() - t0)
    return 2 * 27 * 32 * 32 * BATCH * PATCH ** 3 / min(times)


def step_rate(arch: str, params: dict, precision: str, sampler) -> dict:
    from mrsr_cli.training.losses import parse_loss
    from mrsr_cli.models import build_model

    torch.manual_seed(0)
    net = build_model(arch, {**params, "in_channels": CHANNELS, "factor_channels": 3}).to(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    loss_fn = parse_loss("psnr")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    sample_s, step_s = 0.0, 0.0
    for it in range(ITERATIONS + 1):
        t0 = time.perf_counter()
        x_np, y_np = sampler.batch(np.random.default_rng([0, it]), it)
        t1 = time.perf_counter()
        x = torch.from_numpy(x_np).to(memory_format=torch.channels_last_3d)
        y = torch.from_numpy(y_np)
        with torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
            pred = net(x)
        loss, _ = loss_fn(pred, y, x[:, :1], {})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if it:  # the first iteration warms up oneDNN and the sampler's caches
            sample_s += t1 - t0
            step_s += t2 - t1
    # tried: the next batch drawn in a thread during this step (not what mrsr train does, see below)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(sampler.batch, np.random.default_rng([0, 100]), 100)
        t0 = time.perf_counter()
        for it in range(101, 101 + ITERATIONS):
            x_np, y_np = pending.result()
            pending = pool.submit(sampler.batch, np.random.default_rng([0, it]), it)
            x = torch.from_numpy(x_np).to(memory_format=torch.channels_last_3d)
            with torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16"):
                pred = net(x)
            loss, _ = loss_fn(pred, torch.from_numpy(y_np), x[:, :1], {})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        overlapped = (time.perf_counter() - t0) / ITERATIONS
        pending.result()
    flops = 3 * conv_flops(net) * BATCH * PATCH ** 3
    return {"sample_s": sample_s / ITERATIONS, "step_s": step_s / ITERATIONS, "step_flops": flops,
            "step_gflops_per_s": flops / (step_s / ITERATIONS) / 1e9, "iteration_prefetch_s": overlapped}


def main() -> None:
    from mrsr_cli.training.recipes import load_recipe
    from mrsr_cli.training.sampler import PatchSampler
    from mrsr_cli.training.config import TrainConfig
    from mrsr_cli.training.volumes import load_training_volume

    recipe = load_recipe(DATA.parent / "share" / "recipes" / "default-stage3.toml")
    cfg = TrainConfig.from_dict({**recipe, "inputs": [str(DATA / "icbm152_2009a_t1.nii.gz")], "output": None, "val": None,
                                 "init_from": None}, require_paths=False)
    sampler = PatchSampler([load_training_volume(cfg.inputs[0])], cfg)
    rows = {}
    for precision in ("fp32", "bf16"):
        top = ceiling(precision)
        for arch, params in (("recnn", {"layers": 10, "filters": 32}), ("edsr3d", {"blocks": 4, "filters": 32})):
            r = step_rate(arch, params, precision, sampler)
            r["ceiling_gflops_per_s"] = top / 1e9
            rows[f"{arch} {precision}"] = r
            print(arch, precision, json.dumps({k: round(v, 3) for k, v in r.items()}), flush=True)
    lines = [
        "## Training throughput (issue 23)",
        "",
        f"`python benchmarks/training_throughput.py` — one training step of the default recipe (batch {BATCH}, "
        f"patch {PATCH}³, {CHANNELS} input channels, psnr loss, Adam), 2 threads, averaged over {ITERATIONS} steps after a "
        "warm-up. Model FLOPs per step = 3 × forward FLOPs. Ceiling = one 32→32 3³ conv3d forward over the same "
        f"batch (channels-last, same precision, best of 10). Sampling = drawing the batch with numpy/scipy, which `mrsr "
        f"train` does before each step. The last column tries drawing the next batch in a thread during the step. {stamp()}",
        "",
        "| network, precision | step (s) | model GFLOP/s | ceiling GFLOP/s | % of ceiling | sampling (s per batch) "
        "| draw then step, as `mrsr train` runs (s) | with the draw in a thread (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        serial = r["sample_s"] + r["step_s"]
        lines.append(f"| {name} | {r['step_s']:.2f} | {r['step_gflops_per_s']:.0f} | {r['ceiling_gflops_per_s']:.0f} | "
                     f"{100 * r['step_gflops_per_s'] / r['ceiling_gflops_per_s']:.0f} % | {r['sample_s']:.2f} "
                     f"({100 * r['sample_s'] / serial:.0f} %) | {serial:.2f} | {r['iteration_prefetch_s']:.2f} |")
    lines += ["", "On 2 cores the threaded draw is slower than drawing first: the sampling thread takes a core from "
              "torch's two threads and their synchronised steps wait for it, so `mrsr train` keeps the draw on the "
              "critical path here. With spare cores (a GPU node) the draw might overlap; not measured."]
    write_section("throughput", "\n".join(lines))


if __name__ == "__main__":
    main()
