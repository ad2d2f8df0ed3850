#!/usr/bin/env python3
"""Round 33, step 16: told `--input-psf kspace`, the input matched to the PSF the default learned (issue 33).

Scores `mrsr_cli.upscale(lr, like=hr, input_psf="kspace")` (the default pipeline otherwise) against
spline on the cells of NOTES.md §16, under a label: run it once at the commit before the change
(`before`) and once after (`after`); `compare` applies the rule (fixed before the run).

§17 scores the noise level from the air the same way (`score air`) against §16 as shipped (`compare
after air 0.2`: the mean change the rule asks for).

Usage: python benchmarks/experiments/33-blind/psf_match.py score LABEL [VOLUME]
       python benchmarks/experiments/33-blind/psf_match.py compare [BEFORE AFTER MEAN_CHANGE] [VOLUME]
"""

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
from mrsr_cli.evaluation.metrics import psnr  # noqa: E402
from noise_colour import load_truth, lowres  # noqa: E402
from select_code import VALIDATION, write_results  # noqa: E402

KSPACE = {"acquisition": "kspace"}
# label, factor, simulate keywords, noises
KSPACE_CELLS = [(f"kspace {name}", factor, KSPACE, ("none", "after", "before"))
                for name, factor in (("x2", (2, 2, 2)), ("223", (2, 2, 3)), ("114", (1, 1, 4)))]
CUE_CELLS = [("gaussian x2", (2, 2, 2), {}, ("after",)),
             ("gaussian 0.5 x2", (2, 2, 2), {"fwhm_scale": 0.5}, ("after", "before")),
             ("gaussian 1.5 x2", (2, 2, 2), {"fwhm_scale": 1.5}, ("after",)),
             ("kspace hann x2", (2, 2, 2), {"acquisition": "kspace", "window": "hann"}, ("after",)),
             ("kspace pf 5/8 x2", (2, 2, 2), {"acquisition": "kspace", "partial_fourier": 0.625}, ("after",)),
             ("gaussian 223", (2, 2, 3), {}, ("after",))]


def result_path(label: str, volume: str) -> Path:
    return HERE / "results" / f"psf_match_{label}_{Path(volume).name.split('.')[0]}.json"


def told_kspace_gain(truth, hr, mask, data, lr_grid, model: str | None = None) -> tuple[float, float]:
    """``(spline PSNR, gain over it)`` of the full default pipeline told ``kspace`` (``model`` or the builtin)."""
    lr = nib.Nifti1Image(data, lr_grid.affine)
    base = psnr(truth, mrsr_cli.upscale(lr, like=hr, method="spline").get_fdata(dtype=np.float32), mask)
    out = mrsr_cli.upscale(lr, like=hr, input_psf="kspace", model=model)
    return round(base, 2), round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)


def score(label: str, volume: str) -> None:
    truth, grid, hr, mask = load_truth(volume)
    table = {}
    for name, factor, kw, noises in KSPACE_CELLS + CUE_CELLS:
        for noise in noises:
            data, lr_grid = lowres(truth, grid, factor, kw, noise)
            base, gain = told_kspace_gain(truth, hr, mask, data, lr_grid)
            row = {"spline": base, "told kspace": gain, "kspace cell": name.startswith("kspace ") and kw is KSPACE}
            table[f"{name} noise {noise}"] = row
            print(f"{name} noise {noise}", row, flush=True)
    result_path(label, volume).write_text(json.dumps({"volume": volume, "cells": table}, indent=1) + "\n")


def compare(volume: str, labels=("before", "after"), mean_change: float = 0.5) -> None:
    before, after = (json.loads(result_path(k, volume).read_text())["cells"] for k in labels)
    table = {k: {"spline": before[k]["spline"], "before": before[k]["told kspace"], "after": after[k]["told kspace"],
                 "change": round(after[k]["told kspace"] - before[k]["told kspace"], 2), "kspace cell": before[k]["kspace cell"]}
             for k in before}
    kspace = [r for r in table.values() if r["kspace cell"]]
    cue = [r for r in table.values() if not r["kspace cell"]]
    summary = {"a: mean change over the k-space cells": round(float(np.mean([r["change"] for r in kspace])), 3),
               "b: worst change over the k-space cells": min(r["change"] for r in kspace),
               "c: worst gain over spline in the cue's other cells": min(r["after"] for r in cue)}
    summary["rule met"] = bool(summary["a: mean change over the k-space cells"] >= mean_change
                               and summary["b: worst change over the k-space cells"] >= -0.1
                               and summary["c: worst gain over spline in the cue's other cells"] >= -0.1)
    for k, r in table.items():
        print(k, r)
    write_results("psf_match" if labels == ("before", "after") else f"psf_match_{labels[0]}_vs_{labels[1]}", volume, table,
                  summary)


if __name__ == "__main__":
    if sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else str(VALIDATION))
    elif len(sys.argv) >= 5:
        compare(sys.argv[5] if len(sys.argv) > 5 else str(VALIDATION), (sys.argv[2], sys.argv[3]), float(sys.argv[4]))
    else:
        compare(sys.argv[2] if len(sys.argv) > 2 else str(VALIDATION))
