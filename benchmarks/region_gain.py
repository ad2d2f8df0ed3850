#!/usr/bin/env python3
"""Where a model's gain over spline comes from: PSNR inside the brain vs the rest of the head.

    python benchmarks/region_gain.py HR.nii.gz BRAIN_MASK.nii.gz MODEL [MODEL...] [--factor 2]

Same path as `benchmarks/quality.py`: `mrsr simulate` (Gaussian PSF, FWHM = LR voxel), `mrsr upscale
--like HR`, then PSNR per region with the data range of the whole head mask (so the regions' figures
add up to the head's).  BRAIN_MASK is on HR's grid (the nimare template ships one for
MNI152NLin6Asym; `benchmarks/data.py` extracts it).  Prints one JSON line per model.  Used on the
validation template only (docs/benchmarks.md, round 3); never point it at Colin27 to choose anything.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from _common import MRSR, timed


def main() -> None:
    from mrsr_cli.evaluation.metrics import data_range, head_mask, psnr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hr")
    parser.add_argument("brain_mask")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--factor", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lr, spline = Path(tmp) / "lr.nii.gz", Path(tmp) / "spline.nii.gz"
        timed(MRSR + ["simulate", args.hr, lr, "--factor", args.factor, "--force"])
        timed(MRSR + ["upscale", lr, spline, "--like", args.hr, "--method", "spline", "--force"])
        hr = np.asarray(nib.load(args.hr).dataobj, dtype=np.float64)
        head = head_mask(hr)
        brain = np.asarray(nib.load(args.brain_mask).dataobj) > 0.5
        if brain.shape != hr.shape:
            raise SystemExit(f"{args.brain_mask}: shape {brain.shape} is not the HR image's {hr.shape}")
        regions = {"head": head, "brain": head & brain, "head_not_brain": head & ~brain}
        drange = data_range(hr, head)
        spline_data = np.asarray(nib.load(spline).dataobj, np.float64)
        base = {name: psnr(hr, spline_data, m, drange) for name, m in regions.items()}
        for model in args.models:
            out = Path(tmp) / "sr.nii.gz"
            timed(MRSR + ["upscale", lr, out, "--like", args.hr, "--model", model, "--force"])
            sr = np.asarray(nib.load(out).dataobj, np.float64)
            row = {"model": model, "factor": args.factor, "fraction_of_head": {n: round(float(m.sum() / head.sum()), 3) for n, m in regions.items()}}
            for name, m in regions.items():
                value = psnr(hr, sr, m, drange)
                row[name] = {"spline": round(base[name], 2), "model": round(value, 2), "gain": round(value - base[name], 2)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
