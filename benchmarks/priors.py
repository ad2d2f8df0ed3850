#!/usr/bin/env python3
"""The DNSP priors study (issue 19): what the output priors buy ReCNN and EDSR-3D at an equal
training budget, on held-out Colin27, with all and with 25 % of the training data.

Design (fixed before the first run; the ship rule below too):
* Training data: ICBM152 2009a T1 + the left half of MNI152NLin6Asym (the default's data);
  the 25 % regime keeps the central quarter of each volume's axial slices (a slab with brain,
  scalp and background, 25 % of the voxels) and trains the EDSR-3D pair (without and with all
  priors), the comparison the paper's Fig. 15 makes.  Validation: the right half of MNI152NLin6Asym at
  ×2, (3,3,3), (4,4,4), (1,1,4); the best epoch is kept, as for every model here.
* Equal budget for every configuration: the same 8 epochs × 1000 patches (25³, batch 16, 500
  Adam steps at 1e-4, bf16, 2 threads), the same factors (×2, ×3, ×4, (1,1,4)), the same
  augmentation and seed; base loss L1 (DNSP's) for all; only the network and the priors change.
  The priors at the paper's weights: α 1e-5 (lowrank), β 5e-3 (sharpness and learned-sharpness).
* Test: Colin27 (cropped to 180×216×180), LR by `mrsr simulate` at each factor, `mrsr upscale
  --ensemble 1 --like HR`, PSNR/SSIM in the head mask.  Spread: the head mask's bounding box is
  cut into 3×3×3 blocks and PSNR is scored per block (same data range), so a gain is reported
  as mean ± sd of the per-block paired difference and the share of blocks it wins; with
  `--seeds N`, the EDSR-3D pair is also retrained with seeds 1..N-1 and the spread over seeds
  is reported.
* Ship rule: a prior configuration becomes a builtin only if it beats its prior-free
  counterpart by ≥ 0.2 dB mean PSNR over the four factors, wins ≥ 2/3 of blocks at every
  factor, and the seed spread (if measured) does not cover zero.  Otherwise the builtins keep
  using no prior and docs say so with the numbers.

Usage: python benchmarks/data.py && python benchmarks/priors.py [--seeds 3] [--report-only]
Trains into .data/priors/ (about 6–8 CPU minutes per model, skipped when present); writes
benchmarks/results/priors.json and the 'priors' section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from _common import DATA, MRSR, ROOT, quarter_slab, stamp, timed, write_section

OUT = DATA / "priors"
RESULTS = ROOT / "benchmarks" / "results" / "priors.json"
ALPHA, BETA = 1e-5, 5e-3
ALL_PRIORS = f"l1+{ALPHA:g}*lowrank+{BETA:g}*sharpness+{BETA:g}*learned-sharpness"
CONFIGS = {  # name: (architecture, loss expression, also trained on 25 % of the data)
    "ReCNN": ("recnn", "l1", False),
    "ReCNN + all priors": ("recnn", ALL_PRIORS, False),
    "EDSR-3D": ("edsr3d", "l1", True),
    "EDSR-3D + lowrank": ("edsr3d", f"l1+{ALPHA:g}*lowrank", False),
    "EDSR-3D + sharpness": ("edsr3d", f"l1+{BETA:g}*sharpness", False),
    "EDSR-3D + learned sharpness": ("edsr3d", f"l1+{BETA:g}*learned-sharpness", False),
    "EDSR-3D + all priors": ("edsr3d", ALL_PRIORS, True),
}
COUNTERPART = {name: ("ReCNN" if arch == "recnn" else "EDSR-3D") for name, (arch, _, _) in CONFIGS.items()}
FACTORS = ["2,2,2", "3,3,3", "4,4,4", "1,1,4"]
TRAIN = ["icbm152_2009a_t1.nii.gz", "mni152nlin6asym_t1_1mm_left.nii.gz"]
VAL = "mni152nlin6asym_t1_1mm_right.nii.gz"
BUDGET = ["--epochs", "8", "--patches-per-epoch", "1000", "--batch", "16", "--patch", "25", "--lr", "1e-4",
          "--lr-decay", "0.5@6", "--augment", "flip,permute,intensity", "--precision", "bf16", "--threads", "2",
          "--device", "cpu"]
COLIN_BOX = (slice(0, 180), slice(0, 216), slice(0, 180))
BLOCKS = 3


def slug(name: str, regime: str, seed: int) -> str:
    base = name.lower().replace(" + ", "+").replace(" ", "-")
    return f"{base}_{regime}_s{seed}"


def train(name: str, regime: str, seed: int) -> Path:
    arch, loss, _ = CONFIGS[name]
    model = OUT / f"{slug(name, regime, seed)}.safetensors"
    if model.exists():
        return model
    inputs = [DATA / f for f in TRAIN]
    if regime == "q25":
        inputs = [quarter_slab(p, OUT) for p in inputs]
    t0 = time.perf_counter()
    timed(MRSR + ["train", *inputs, "-o", model, "--arch", arch, "--loss", loss, "--scales", ";".join(FACTORS),
                  "--val", DATA / VAL, "--val-factor", ";".join(FACTORS), "--seed", str(seed), "--name",
                  slug(name, regime, seed), "-q", "--force", *BUDGET])
    print(f"trained {model.name} in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    return model


def crop_colin(out: Path) -> Path:
    img = nib.load(DATA / "colin27_ch2.nii.gz")
    nib.save(img.slicer[COLIN_BOX], str(out))
    return out


def block_psnr(ref: np.ndarray, test: np.ndarray, mask: np.ndarray, drange: float) -> list[float]:
    """PSNR (dB) in each of BLOCKS³ blocks of the mask's bounding box, with the whole image's data range."""
    from mrsr_cli.evaluation.metrics import psnr

    idx = np.nonzero(mask)
    edges = [np.linspace(i.min(), i.max() + 1, BLOCKS + 1).astype(int) for i in idx]
    scores = []
    for a in range(BLOCKS):
        for b in range(BLOCKS):
            for c in range(BLOCKS):
                box = (slice(edges[0][a], edges[0][a + 1]), slice(edges[1][b], edges[1][b + 1]),
                       slice(edges[2][c], edges[2][c + 1]))
                scores.append(psnr(ref[box], test[box], mask[box], drange) if mask[box].sum() > 1000 else float("nan"))
    return scores


def score(models: dict[str, Path]) -> dict:
    """Scores of spline and every model at every factor; cached per model file in OUT/scores.json
    (the LR images are deterministic), so a rerun with more seeds scores only the new models."""
    from mrsr_cli.evaluation.metrics import compare, data_range, head_mask

    cache_path = OUT / "scores.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hr_path = crop_colin(tmp / "colin.nii.gz")
        hr = np.asarray(nib.load(hr_path).dataobj, dtype=np.float32)
        mask = head_mask(hr)
        drange = data_range(hr, mask)
        for factor in FACTORS:
            lr = tmp / "lr.nii.gz"
            timed(MRSR + ["simulate", hr_path, lr, "--factor", factor, "--force"])
            results[factor] = {}
            for key, model in {"spline": None, **models}.items():
                cached = cache.get(f"{factor}|{model.name if model else 'spline'}")
                if cached:
                    results[factor][key] = cached
                    continue
                out = tmp / "sr.nii.gz"
                opts = ["--method", "spline"] if model is None else ["--model", model, "--ensemble", "1"]
                wall, _, _ = timed(MRSR + ["upscale", lr, out, "--like", hr_path, "--force", "--threads", "2", *opts])
                sr = np.asarray(nib.load(out).dataobj, dtype=np.float32)
                row = compare(hr, sr, mask)
                results[factor][key] = {"psnr": row["psnr"], "ssim": row["ssim"], "seconds": wall,
                                        "blocks": block_psnr(hr, sr, mask, drange)}
                cache[f"{factor}|{model.name if model else 'spline'}"] = results[factor][key]
                cache_path.write_text(json.dumps(cache))
            print(factor, {k: round(v["psnr"], 2) for k, v in results[factor].items()}, flush=True)
    return results


def paired(results: dict, a: str, b: str) -> dict:
    """a − b per factor: whole-mask PSNR and SSIM difference, per-block mean ± sd and share of blocks won."""
    out = {}
    for factor in FACTORS:
        ra, rb = results[factor][a], results[factor][b]
        d = np.array(ra["blocks"]) - np.array(rb["blocks"])
        d = d[np.isfinite(d)]
        out[factor] = {"psnr": ra["psnr"] - rb["psnr"], "ssim": ra["ssim"] - rb["ssim"], "block_mean": float(d.mean()),
                       "block_sd": float(d.std(ddof=1)), "won": float((d > 0).mean()), "blocks": int(d.size)}
    return out


def measure(seeds: int) -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    if not (DATA / VAL).exists():
        import subprocess
        import sys
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "split_hemispheres.py"),
                        str(DATA / "mni152nlin6asym_t1_1mm.nii.gz")], check=True)
    models = {}
    for name, (_, _, scarce) in CONFIGS.items():
        models[f"{name} | all"] = train(name, "all", 0)
    for name, (_, _, scarce) in CONFIGS.items():
        if scarce:
            models[f"{name} | q25"] = train(name, "q25", 0)
    for seed in range(1, seeds):
        for name in ("EDSR-3D", "EDSR-3D + all priors"):
            models[f"{name} | all | s{seed}"] = train(name, "all", seed)
    return {"models": {k: str(v.relative_to(DATA)) for k, v in models.items()}, "scores": score(models),
            "stamp": stamp(), "seeds": seeds}


def report(res: dict) -> str:
    scores = res["scores"]
    lines = [
        "## DNSP priors: what they buy at an equal budget (issue 19)", "",
        "`python benchmarks/data.py && python benchmarks/priors.py --seeds "
        f"{res['seeds']}` (design and ship rule in the script's docstring, fixed before the run). "
        "Every network trains for the same 500 Adam steps (8 epochs × 1000 patches of 25³, batch 16, lr 1e-4, "
        "bf16) on ICBM152 2009a + the left half of MNI152NLin6Asym with factors ×2, ×3, ×4, (1,1,4), base loss L1, "
        f"seed 0; priors at the paper's weights (`{ALL_PRIORS}` for 'all priors'). ReCNN is the default's 10×32 "
        "network, EDSR-3D 4 blocks × 32 filters (the same size). Test: held-out Colin27 (180×216×180 crop), "
        "PSNR (dB) / SSIM in the head mask, one pass (`--ensemble 1`). '25 %' trains on a quarter of the data "
        "(the central 25 % of each volume's axial slices, same steps; the EDSR-3D pair only). " + res["stamp"], "",
        "| model | data | " + " | ".join(f"×{f.replace(',', ',')}" if f != "1,1,4" else "(1,1,4)" for f in FACTORS) + " |",
        "|---|---|" + "---|" * len(FACTORS),
        "| spline | — | " + " | ".join(f"{scores[f]['spline']['psnr']:.2f} / {scores[f]['spline']['ssim']:.4f}"
                                       for f in FACTORS) + " |",
    ]
    for key in res["models"]:
        name, regime, *seed = [s.strip() for s in key.split("|")]
        if seed:
            continue
        lines.append(f"| {name} | {'25 %' if regime == 'q25' else 'all'} | " + " | ".join(
            f"{scores[f][key]['psnr']:.2f} / {scores[f][key]['ssim']:.4f}" for f in FACTORS) + " |")
    lines += ["", "Gain of each prior configuration over the same network without priors (PSNR dB over the whole "
              "mask; per-block paired difference mean ± sd over the 3×3×3 blocks of the head's bounding box; "
              "share of blocks where the priors win):", "",
              "| priors | data | " + " | ".join(("×" + f[0]) if f != "1,1,4" else "(1,1,4)" for f in FACTORS)
              + " | mean |", "|---|---|" + "---|" * (len(FACTORS) + 1)]
    verdicts = {}
    for key in res["models"]:
        name, regime, *seed = [s.strip() for s in key.split("|")]
        base = f"{COUNTERPART[name]} | {regime}"
        if seed or key == base:
            continue
        d = paired(scores, key, base)
        mean = float(np.mean([d[f]["psnr"] for f in FACTORS]))
        verdicts[key] = (mean, min(d[f]["won"] for f in FACTORS))
        lines.append(f"| {name} | {'25 %' if regime == 'q25' else 'all'} | " + " | ".join(
            f"{d[f]['psnr']:+.2f} ({d[f]['block_mean']:+.2f} ± {d[f]['block_sd']:.2f}, {d[f]['won']:.0%})"
            for f in FACTORS) + f" | {mean:+.2f} |")
    # data-scarcity claim: does the prior-free network lose more when the data shrink?
    lines += ["", "Loss from 100 % to 25 % of the training data (PSNR dB, mean over the four factors; the "
              "paper's Fig. 15 claims the priors lose less):", ""]
    for name in ("ReCNN", "ReCNN + all priors", "EDSR-3D", "EDSR-3D + all priors"):
        full, q = f"{name} | all", f"{name} | q25"
        if full in scores[FACTORS[0]] and q in scores[FACTORS[0]]:
            drop = float(np.mean([scores[f][q]["psnr"] - scores[f][full]["psnr"] for f in FACTORS]))
            lines.append(f"* {name}: {drop:+.2f} dB")
    seeds = sorted({k.split("|")[2].strip() for k in res["models"] if k.count("|") == 2})
    if seeds:
        lines += ["", "Spread over training seeds (EDSR-3D + all priors − EDSR-3D, full data, PSNR dB):", ""]
        gains = {f: [] for f in FACTORS}
        for s in ["s0", *seeds]:
            suffix = "" if s == "s0" else f" | {s}"
            for f in FACTORS:
                gains[f].append(scores[f][f"EDSR-3D + all priors | all{suffix}"]["psnr"]
                                - scores[f][f"EDSR-3D | all{suffix}"]["psnr"])
        for f in FACTORS:
            g = np.array(gains[f])
            lines.append(f"* {f}: {' / '.join(f'{x:+.2f}' for x in g)} (mean {g.mean():+.2f} ± {g.std(ddof=1):.2f})")
    shipped = [k for k, (mean, won) in verdicts.items() if mean >= 0.2 and won >= 2 / 3]
    lines += ["", "Ship rule (≥ 0.2 dB mean over the factors and ≥ 2/3 of blocks won at every factor): "
              + (f"met by {', '.join(shipped)}." if shipped else "met by no configuration; the builtin models "
                 "keep using no prior.")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds for the EDSR-3D pair (default 1)")
    parser.add_argument("--report-only", action="store_true", help="rewrite the section from the saved results")
    args = parser.parse_args()
    if args.report_only:
        res = json.loads(RESULTS.read_text())
    else:
        res = measure(args.seeds)
        RESULTS.write_text(json.dumps(res, indent=1))
    write_section("priors", report(res))


if __name__ == "__main__":
    main()
