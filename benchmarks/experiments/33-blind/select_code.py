#!/usr/bin/env python3
"""Issue 33, round 33: which PSF code should the blind candidate assume when nothing is told?

Rule fixed before the run: on the validation half (MNI152NLin6Asym right, never trained on),
over the cells below (no data consistency: a blind default cannot know the operator), pick the
Gaussian-equivalent FWHM (LR voxels) that maximises the minimum gain over cubic spline; ties
by the mean gain.  The default (today's builtin) is scored beside it.

Usage: python benchmarks/experiments/33-blind/select_code.py MODEL.safetensors
"""

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import mrsr_cli  # noqa: E402
from mrsr_cli.evaluation.metrics import head_mask, psnr  # noqa: E402

CELLS = [  # label, factor, simulate keywords
    ("gaussian 1 ×2", (2, 2, 2), {}),
    ("gaussian 0.5 ×2", (2, 2, 2), {"fwhm": (1.0, 1.0, 1.0)}),
    ("box 1 ×2", (2, 2, 2), {"psf": "box"}),
    ("kspace ×2", (2, 2, 2), {"acquisition": "kspace"}),
    ("kspace ×2 + 2 %", (2, 2, 2), {"acquisition": "kspace", "noise": 0.02, "seed": 0}),
    ("kspace hann ×2", (2, 2, 2), {"acquisition": "kspace", "window": "hann"}),
    ("kspace ×(2,2,3)", (2, 2, 3), {"acquisition": "kspace"}),
    ("box slices ×(1,1,4)", (1, 1, 4), {"slice_thickness": 4.0, "slice_profile": "box"}),
]
CODES = [0.0, 0.6, 0.7, 0.8, 0.9, 1.0]


VALIDATION = ROOT / ".data" / "mni152nlin6asym_t1_1mm_right.nii.gz"


def cells(volume: str, table: list):
    """``(hr image, truth, head mask, label, LR image, spline PSNR)`` for each cell of ``table``
    (label, factor, simulate keywords) on the volume at ``volume``."""
    img = nib.load(volume)
    hr = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    truth = hr.get_fdata(dtype=np.float32)
    mask = head_mask(truth)
    for label, factor, kw in table:
        lr = mrsr_cli.simulate(hr, factor=factor, **kw)
        base = psnr(truth, mrsr_cli.upscale(lr, like=hr, method="spline").get_fdata(dtype=np.float32), mask)
        yield hr, truth, mask, label, lr, base


def write_results(step: str, volume: str, table: dict, summary: dict) -> None:
    """Print ``summary`` and save the step's cells and summary as ``results/STEP_VOLUME.json``."""
    print("summary", summary)
    out = Path(__file__).with_name("results") / f"{step}_{Path(volume).name.split('.')[0]}.json"
    out.write_text(json.dumps({"volume": volume, "cells": table, "summary": summary}, indent=1) + "\n")
    print("wrote", out)


def main() -> None:
    model = sys.argv[1]
    volume = sys.argv[2] if len(sys.argv) > 2 else str(VALIDATION)
    table = {}
    for hr, truth, mask, label, lr, base in cells(volume, CELLS):
        lr_vox = np.asarray(lr.header.get_zooms()[:3], dtype=float)
        row = {"spline": round(base, 2)}
        out = mrsr_cli.upscale(lr, like=hr, ensemble=1, consistency="off", safety_net="off").get_fdata(dtype=np.float32)
        row["default"] = round(psnr(truth, out, mask) - base, 2)
        for code in CODES:
            out = mrsr_cli.upscale(lr, like=hr, model=model, ensemble=1, consistency="off", safety_net="off",
                                   input_fwhm=tuple(code * lr_vox)).get_fdata(dtype=np.float32)
            row[str(code)] = round(psnr(truth, out, mask) - base, 2)
        table[label] = row
        print(label, row, flush=True)
    summary = {str(c): {"min": min(r[str(c)] for r in table.values()), "mean": round(float(np.mean([r[str(c)] for r in table.values()])), 3)}
               for c in CODES}
    summary["default"] = {"min": min(r["default"] for r in table.values()),
                          "mean": round(float(np.mean([r["default"] for r in table.values()])), 3)}
    best = max(CODES, key=lambda c: (summary[str(c)]["min"], summary[str(c)]["mean"]))
    print("summary", summary, "chosen", best)
    out = Path(__file__).with_name("results") / f"select_code_{Path(model).stem}_{Path(volume).name.split('.')[0]}.json"
    out.write_text(json.dumps({"model": model, "volume": volume, "cells": table, "summary": summary, "chosen": best}, indent=1) + "\n")


if __name__ == "__main__":
    main()
