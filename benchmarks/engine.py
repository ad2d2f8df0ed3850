#!/usr/bin/env python3
"""Inference engine benchmark (issues 4 and 36): ceiling, mrsr engine, MONAI, torchio — same weights, same volume.

Network: the paper's 20-layer, 64-filter ReCNN (random MSRA weights, seed 0: speed does not
depend on weight values).  Volume: a 128³ crop of Colin27 ch2 (normalised).  Each measurement
runs in its own process (peak RSS per method); times exclude start-up.  mrsr rows: the whole
volume in one call (the reference every other row is compared with), the streamed engine with
no limit and with --memory-limit 1G, and the halo tiling of waves 1-2 under the same limit.
Also, in the same run: the default model on a whole 1 mm brain ×2 and 1 mm → 0.5 mm with
--memory-limit 1G through the CLI, with the CPU flags named.
Writes the 'engine' section of docs/benchmarks.md.
Needs the bench extras: pip install -e '.[bench]'      Usage: python benchmarks/engine.py
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, MRSR, stamp, timed, write_section

LAYERS, FILTERS, SIZE = 20, 64, 128


def model_flops_per_voxel(layers=LAYERS, filters=FILTERS, k=3, cin=1):
    macs = k**3 * (cin * filters + filters * filters * (layers - 2) + filters)
    return 2 * macs


def load_volume():
    import nibabel as nib

    data = np.asarray(nib.load(DATA / "colin27_ch2.nii.gz").dataobj, dtype=np.float32)
    c = [n // 2 for n in data.shape]
    crop = data[tuple(slice(ci - SIZE // 2, ci + SIZE // 2) for ci in c)]
    return crop / np.percentile(crop[crop > 0], 99.5)


def build_net():
    import torch

    from mrsr_cli.models import ReCNN

    torch.manual_seed(0)
    return ReCNN(layers=LAYERS, filters=FILTERS).eval()


def worker(mode: str, precision: str, out_path: str) -> None:
    import torch

    torch.set_num_threads(2)
    dtype = torch.bfloat16 if precision == "bf16" else None
    result = {}
    if mode == "ceiling":
        conv = torch.nn.Conv3d(FILTERS, FILTERS, 3, padding=1).eval().to(memory_format=torch.channels_last_3d)
        x = torch.randn(1, FILTERS, 64, 64, 64).to(memory_format=torch.channels_last_3d)
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            conv(x)
            t0 = time.perf_counter()
            for _ in range(5):
                conv(x)
            dt = (time.perf_counter() - t0) / 5
        result = {"seconds": dt, "gflops": 2 * 27 * FILTERS * FILTERS * 64**3 / dt / 1e9}
        Path(out_path).write_text(json.dumps(result))
        return
    vol = load_volume()
    net = build_net()
    t0 = time.perf_counter()
    if mode.startswith("mrsr"):
        from mrsr_cli.infer.device import parse_bytes
        from mrsr_cli.infer.tiling import EngineOptions, TorchPredictor, _budget, choose_core, run_tiled
        from mrsr_cli.models.channels import ArrayField

        src = ArrayField(vol)
        limit = parse_bytes("1G") if mode in ("mrsr-tiled", "mrsr-halo") else None
        tile_size = {"mrsr-whole": 0}.get(mode)
        if mode == "mrsr-halo":  # the cubic core the halo-tiling planner of waves 1-2 picks under the same limit
            predictor = TorchPredictor(net, "cpu", precision)
            options = EngineOptions(device="cpu", precision=precision, memory_limit=limit)
            budget = _budget(predictor.device, options, vol.nbytes, 0)
            tile_size = choose_core(vol.shape, predictor.halo, predictor.bytes_per_voxel, budget)
        opts = EngineOptions(device="cpu", precision=precision, progress=False, tile_size=tile_size, memory_limit=limit)
        t0 = time.perf_counter()
        out, info = run_tiled(net, lambda box: src.read(box)[None], vol.shape, opts)
        result["plan"] = (f"{info['Engine']}, {info.get('SlabPlanes', '-')} planes per slab, " if info["Engine"] == "streamed"
                          else "halo tiles, ") + f"core {info['TileCore']} × {info['Tiles']}"
    else:
        net = net.to(memory_format=torch.channels_last_3d)
        x = torch.from_numpy(vol)[None, None]

        def predict(batch):
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                return net(batch.to(memory_format=torch.channels_last_3d)).float()

        with torch.inference_mode():
            if mode == "monai":
                from monai.inferers import sliding_window_inference

                out = sliding_window_inference(x, roi_size=(96, 96, 96), sw_batch_size=1, predictor=predict,
                                               overlap=0.25, mode="gaussian")[0, 0].numpy()
            elif mode == "torchio":
                import torchio as tio

                subject = tio.Subject(img=tio.ScalarImage(tensor=x[0]))
                sampler = tio.inference.GridSampler(subject, patch_size=96, patch_overlap=24)
                aggregator = tio.inference.GridAggregator(sampler)
                loader = torch.utils.data.DataLoader(sampler, batch_size=1)
                for batch in loader:
                    aggregator.add_batch(predict(batch["img"][tio.DATA]), batch[tio.LOCATION])
                out = aggregator.get_output_tensor()[0].numpy()
    result["seconds"] = time.perf_counter() - t0
    np.save(out_path + ".npy", out.astype(np.float32))
    Path(out_path).write_text(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--out")
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.precision, args.out)
        return
    flops = model_flops_per_voxel() * SIZE**3
    rows, whole = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ["ceiling", "mrsr-whole", "mrsr-streamed", "mrsr-tiled", "mrsr-halo", "monai", "torchio"]:
            out = f"{tmp}/{mode}.json"
            _, peak, _ = timed([sys.executable, __file__, "--worker", mode, "--precision", args.precision, "--out", out])
            res = json.loads(Path(out).read_text())
            res["peak_mib"] = peak
            if mode != "ceiling":
                pred = np.load(out + ".npy")
                if mode == "mrsr-whole":
                    whole = pred
                res["max_abs_diff"] = float(np.abs(pred - whole).max())
                res["gflops"] = flops / res["seconds"] / 1e9
            rows[mode] = res
            print(mode, res, flush=True)
        cli = []
        if not args.skip_cli:
            src = DATA / "mni152nlin6asym_t1_1mm.nii.gz"
            lr = Path(tmp) / "lr.nii.gz"
            timed(MRSR + ["simulate", src, lr, "--factor", "2"])
            runs = [("2 mm → 1 mm whole brain (182×218×182 = 7.2 M output voxels)", lr, []),
                    ("1 mm → 0.5 mm whole brain (364×436×364 = 57.8 M output voxels), --memory-limit 1G", src,
                     ["--memory-limit", "1G"])]
            for label, source, extra in runs:
                for passes in ([], ["--ensemble", "2"]):
                    out = Path(tmp) / "sr.nii.gz"
                    wall, peak, _ = timed(MRSR + ["upscale", source, out, "--factor", "2", "--json", "--force", *extra, *passes])
                    sidecar = json.loads(out.with_name("sr.json").read_text())
                    how = (f"default model, {'--ensemble 2' if passes else '--ensemble auto'} "
                           f"({sidecar['SelfEnsemble']} pass{'es' if sidecar['SelfEnsemble'] > 1 else ''}, "
                           f"{sidecar['Engine']}, {sidecar['BackgroundSkipped']:.0%} skipped as background)")
                    cli.append((f"{how}, {label}", wall, peak))
                    print(cli[-1], flush=True)
    ceiling = rows["ceiling"]["gflops"]
    lines = [
        "## Inference engine (issue 4)",
        "",
        f"`python benchmarks/engine.py` — paper's 20-layer 64-filter ReCNN (same random weights for every method), "
        f"{SIZE}³ crop of Colin27, precision {args.precision}, 2 threads; one process per method; times exclude "
        f"start-up. Model FLOPs = {model_flops_per_voxel() / 1e6:.2f} MFLOP per output voxel. The last column compares "
        f"each output with the whole volume in one call. {stamp()}",
        "",
        "| method | wall (s) | model GFLOP/s | % of ceiling | peak RSS (MiB) | max abs diff vs whole volume |",
        "|---|---|---|---|---|---|",
        f"| (a) ceiling: one 64→64 3³ conv3d, 64³, channels-last | {rows['ceiling']['seconds']:.3f} (per conv) | {ceiling:.0f} | 100 % "
        f"| {rows['ceiling']['peak_mib']:.0f} | — |",
    ]
    labels = {"mrsr-whole": "(b) mrsr engine, whole volume in one call (`--tile-size 0`)",
              "mrsr-streamed": "(b) mrsr engine, default (streamed), no limit",
              "mrsr-tiled": "(b) mrsr engine, default (streamed), `--memory-limit 1G`",
              "mrsr-halo": "(b) mrsr halo tiling of waves 1-2 under the same 1G (`--tile-size` = its planner's core)",
              "monai": "(c) MONAI sliding_window_inference (roi 96³, overlap 0.25, gaussian)",
              "torchio": "(c) torchio GridSampler/GridAggregator (96³, overlap 24)"}
    for mode, label in labels.items():
        r = rows[mode]
        extra = f" — {r['plan']}" if "plan" in r else ""
        lines.append(f"| {label}{extra} | {r['seconds']:.1f} | {r['gflops']:.0f} | {100 * r['gflops'] / ceiling:.0f} % | "
                     f"{r['peak_mib']:.0f} | {r['max_abs_diff']:.2e} |")
    whole_s, limited_s = rows["mrsr-whole"]["seconds"], rows["mrsr-tiled"]["seconds"]
    lines += ["", f"Under `--memory-limit 1G` the default engine runs at {100 * whole_s / limited_s:.0f} % of the whole-volume "
              f"call's speed (goal ≥ 90 %), {rows['monai']['seconds'] / limited_s:.2f}× MONAI's (goal ≥ 3×), and "
              f"{rows['mrsr-halo']['seconds'] / limited_s:.2f}× the halo tiling of waves 1-2."]
    if cli:
        lines += ["", "Whole-brain runs through the CLI (`mrsr upscale` with `--precision auto`: bf16 on a CPU with avx512_bf16, "
                  "else fp32; wall time including start-up and NIfTI I/O; data consistency included at 1 mm, "
                  "skipped at 0.5 mm under the 1G limit, as upscale says):", "",
                  "| run | wall (s) | peak RSS (MiB) |", "|---|---|---|"]
        lines += [f"| {label} | {wall:.1f} | {peak:.0f} |" for label, wall, peak in cli]
    write_section("engine", "\n".join(lines))


if __name__ == "__main__":
    main()
