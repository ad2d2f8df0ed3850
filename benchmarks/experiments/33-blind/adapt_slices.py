#!/usr/bin/env python3
"""Round 33 §8 and §10: `upscale --adapt 300 --seed 0` on 4 mm slices told their slice profile (what
a 2-D scanner sidecar tells: sinc, FWHM = the thickness), against the same command without it.

§8 measured `--adapt` when it learned one octave coarser on thick slices too
(results/adapt_slices_VOLUME.json); since §10 it learns from the in-plane axes there, and this
script measures that (results/adapt_slices_VOLUME_inplane.json).

Usage: python benchmarks/experiments/33-blind/adapt_slices.py [VOLUME]    (default: the validation half)
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
from mrsr_cli.evaluation.metrics import psnr  # noqa: E402
from select_code import VALIDATION, cells  # noqa: E402

CELLS = [("box 114", (1, 1, 4), {"slice_profile": "box", "slice_thickness": 4.0}),
         ("sinc 114", (1, 1, 4), {"slice_profile": "sinc", "slice_thickness": 4.0})]


def compare(volume: str, steps: int, adapted: str, result: str) -> dict:
    """The gain over spline of the told command without and with `--adapt STEPS --seed 0` (the
    row ``adapted``) on each cell of ``volume``; written to results/``result``."""
    table = {}
    for hr, truth, mask, label, lr, base in cells(volume, CELLS):
        told = {"input_psf": "sinc", "input_fwhm": (1.0, 1.0, 4.0)}
        row = {"spline": round(base, 2)}
        for name, extra in (("told", {}), (adapted, {"adapt": steps, "seed": 0})):
            start = time.perf_counter()
            out = mrsr_cli.upscale(lr, like=hr, **told, **extra)
            row[name] = round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)
            row[name + " s"] = round(time.perf_counter() - start, 1)
        table[label] = row
        print(label, row, flush=True)
    out = HERE / "results" / result
    out.write_text(json.dumps(table, indent=1) + "\n")
    print("wrote", out)
    return table


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    compare(volume, 300, "told + adapt", f"adapt_slices_{Path(volume).name.split('.')[0]}_inplane.json")


if __name__ == "__main__":
    main()
