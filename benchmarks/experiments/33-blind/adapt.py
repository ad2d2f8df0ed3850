#!/usr/bin/env python3
"""Round 33: what `upscale --adapt 300` buys on held-out Colin27 at ×2 (after the product was built;
measured, not tuned: 300 steps and the learning rate were fixed before this ran).

Usage: python benchmarks/experiments/33-blind/adapt.py [STEPS]
Writes results/adapt.json beside this file.
"""

import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[2])]
from _common import DATA, machine  # noqa: E402

import mrsr_cli  # noqa: E402
from mrsr_cli.evaluation.metrics import head_mask, psnr  # noqa: E402

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
CASES = [("Gaussian PSF (simulate's) ×2", {}, {}),
         ("k-space truncation ×2, told --input-psf kspace", {"acquisition": "kspace"}, {"input_psf": "kspace"})]


def main() -> None:
    img = nib.load(str(DATA / "colin27_ch2.nii.gz"))
    hr = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    truth = hr.get_fdata(dtype=np.float32)
    mask = head_mask(truth)
    results = {"machine": machine(), "steps": STEPS, "cases": {}}
    for label, simulate, told in CASES:
        lr = mrsr_cli.simulate(hr, factor=2, **simulate)
        base = psnr(truth, mrsr_cli.upscale(lr, like=hr, method="spline").get_fdata(dtype=np.float32), mask)
        row = {"spline_psnr": round(base, 2)}
        for name, extra in (("without", {}), ("with", {"adapt": STEPS, "seed": 0})):
            start = time.perf_counter()
            out = mrsr_cli.upscale(lr, like=hr, **told, **extra)
            row[f"{name}_gain_db"] = round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)
            row[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
            if extra:
                row["adapt_record"] = out.extra["mrsr"]["Adapt"]
        results["cases"][label] = row
        print(label, json.dumps(row), flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "adapt.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
