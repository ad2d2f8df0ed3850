#!/usr/bin/env python3
"""Round 33: a PSF-aware model told the input is a k-space truncation (`--input-psf kspace`), with and
without data consistency, and told simulate's PSF, on the validation half (right half of
MNI152NLin6Asym): the scores that decided B2 against `psf-aware` (NOTES.md).

Usage: python benchmarks/experiments/33-blind/told_kspace.py MODEL [VOLUME]
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
from mrsr_cli.evaluation.metrics import psnr  # noqa: E402
from select_code import VALIDATION, cells  # noqa: E402

CELLS = [("gauss x2", (2, 2, 2), {}), ("kspace x2", (2, 2, 2), {"acquisition": "kspace"}),
         ("kspace x2 2%", (2, 2, 2), {"acquisition": "kspace", "noise": 0.02, "seed": 0}),
         ("kspace 223", (2, 2, 3), {"acquisition": "kspace"}),
         ("box slices 114", (1, 1, 4), {"slice_thickness": 4.0, "slice_profile": "box"})]


def main() -> None:
    model = sys.argv[1]
    volume = sys.argv[2] if len(sys.argv) > 2 else str(VALIDATION)
    table = {}
    for hr, truth, mask, label, lr, base in cells(volume, CELLS):
        row = {"spline": round(base, 2)}
        zooms = tuple(float(v) for v in lr.header.get_zooms()[:3])
        for name, opts in [("K+cons", {"input_psf": "kspace"}), ("K alone", {"input_psf": "kspace", "consistency": "off"}),
                           ("told simulate's", {"input_fwhm": zooms})]:
            out = mrsr_cli.upscale(lr, like=hr, model=model, ensemble=1, safety_net="off", **opts)
            row[name] = round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)
        table[label] = row
        print(label, row, flush=True)
    out = Path(__file__).with_name("results") / f"told_kspace_{Path(model).stem}.json"
    out.write_text(json.dumps({"model": model, "volume": volume, "cells": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
