#!/usr/bin/env python3
"""Round 33, step 13: a thick-slice input that nothing tells about, upscaled as if it were a 2-D
scanner's (issue 33).

Scores the default command (nothing told: simulate's Gaussian assumed) against told the
windowed-sinc slice profile of FWHM = the slice spacing (what `--input-psf auto` would assume for
a thick-slice input without a sidecar) on 20 thick-slice cells. The rule is in NOTES.md §13,
fixed before the run.

Usage: python benchmarks/experiments/33-blind/assume_sinc.py [VOLUME]
"""

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
from mrsr_cli.evaluation.metrics import psnr  # noqa: E402
from select_code import VALIDATION, cells, write_results  # noqa: E402


def cell_table() -> list:
    """(label, factor, simulate keywords) of the 20 cells: 1 mm voxels, so the spacing is the factor."""
    table = []
    for slices in (4, 5):
        for noise in (0.0, 0.02):
            made = [("box", {"slice_profile": "box", "slice_thickness": float(slices)}),
                    ("sinc", {"slice_profile": "sinc", "slice_thickness": float(slices)}),
                    ("sinc gap 25%", {"slice_profile": "sinc", "slice_thickness": 0.75 * slices}),
                    ("gaussian", {"slice_profile": "gaussian", "slice_thickness": float(slices)}),
                    ("kspace", {"acquisition": "kspace"})]
            for name, kw in made:
                table.append((f"11{slices} {name} noise {noise:g}", (1, 1, slices), {**kw, "noise": noise, "seed": 0}))
    return table


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    table = {}
    for hr, truth, mask, label, lr, base in cells(volume, cell_table()):
        zooms = tuple(float(v) for v in lr.header.get_zooms()[:3])
        row = {"spline": round(base, 2)}
        for name, opts in [("default", {}), ("assume sinc", {"input_psf": "sinc", "input_fwhm": zooms})]:
            out = mrsr_cli.upscale(lr, like=hr, **opts)
            row[name] = round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)
        row["change"] = round(row["assume sinc"] - row["default"], 2)
        table[label] = row
        print(label, row, flush=True)
    changes = [r["change"] for r in table.values()]
    summary = {"mean change": round(float(np.mean(changes)), 3), "worst change": min(changes),
               "below spline, default": sum(r["default"] < 0 for r in table.values()),
               "below spline, assume sinc": sum(r["assume sinc"] < 0 for r in table.values())}
    summary["rule met"] = bool(summary["mean change"] >= 0.2 and summary["worst change"] >= -0.5
                               and summary["below spline, assume sinc"] <= summary["below spline, default"])
    write_results("assume_sinc", volume, table, summary)


if __name__ == "__main__":
    main()
