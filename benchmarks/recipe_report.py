#!/usr/bin/env python3
"""Validation curves of the recipe ablation (benchmarks/recipe_ablation.sh): PSNR gain over spline
on MNI152NLin6Asym (held-out template; trained on ICBM152 2009a only) after each epoch.
Writes the 'recipe' section of docs/benchmarks.md.
Usage: python benchmarks/recipe_report.py [LOG_DIR]   (default: benchmarks/results/ablation)
"""

import json
import sys
from pathlib import Path

from _common import DATA, ROOT, stamp, write_section

FACTORS = [[2, 2, 2], [2, 2, 3], [3, 3, 3], [1, 1, 4]]


def four_factor_gains(model_path: Path) -> list[float]:
    """Gains of a model at the four validation factors, with the training's own validation code."""
    from mrsr_cli.engine import normalization_scale
    from mrsr_cli.io import load_volume
    from mrsr_cli.models.store import load_model
    from mrsr_cli.train import validate

    net, _ = load_model(model_path)
    vol = load_volume(DATA / "mni152nlin6asym_t1_1mm.nii.gz")
    volumes = [(vol.data / normalization_scale(vol.data), vol.grid, None)]
    return validate(net.eval(), volumes, FACTORS, "bf16")[2]

RUNS = {
    "A": "×2 only, blind, MSE (stage 1 of the default)",
    "B": "blind, multiscale list + per-axis range 1.2–4, MSE, from scratch",
    "C": "factor input, multiscale list, MSE, from scratch",
    "F2": "A + factor input, multiscale fine-tune, MSE, lr 2e-5",
    "F3": "A + factor input, multiscale fine-tune, psnr loss, lr 2e-5",
    "G": "as F3 + affine augmentation, lr 5e-5",
    "H": "as G + sharpness augmentation (stage 2 of the default)",
}
logs = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / "results" / "ablation"
lines = ["## How the default recipe was chosen (issue 3)", "",
         "`bash benchmarks/recipe_ablation.sh && python benchmarks/recipe_report.py .data/ablation` — every run trains on "
         "ICBM152 2009a only and is validated on MNI152NLin6Asym (the other template, full volume, head mask); "
         "Colin27 plays no part. Gain = model PSNR − spline PSNR (dB) after each epoch of 100 iterations × 16 patches. "
         "Runs A–C validate at ×2 only; the fine-tunes at (2,2,2) / (2,2,3) / (3,3,3) / (1,1,4). "
         f"The fine-tunes ran for the epochs shown (stopped by hand once the trend was clear). {stamp()}", "",
         "| run | what | gain per epoch (dB) |", "|---|---|---|"]
for run, what in RUNS.items():
    path = logs / f"{run}.log.jsonl"
    if not path.exists():
        continue
    vals = [r for r in map(json.loads, path.read_text().splitlines()) if "val_psnr" in r]
    cells = []
    for r in vals:
        if "val_gain_per_factor" in r:
            cells.append("[" + ", ".join(f"{g:+.2f}" for g in r["val_gain_per_factor"]) + "]")
        else:
            cells.append(f"{r['val_psnr'] - r['val_psnr_spline']:+.2f}")
    lines.append(f"| {run} | {what} | {' → '.join(cells)} |")
stage1 = DATA / "models" / "recnn-x2-stage1.safetensors"
if stage1.exists():
    gains = ", ".join(f"{g:+.2f}" for g in four_factor_gains(stage1))
    lines += ["", f"A's final weights (stage 1 of the default, `{stage1.relative_to(ROOT)}`) at the four factors: [{gains}] dB."]
write_section("recipe", "\n".join(lines))
