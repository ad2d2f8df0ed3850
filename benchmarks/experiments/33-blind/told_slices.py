#!/usr/bin/env python3
"""Round 33, step 3: what a scanner's sidecar can tell `upscale` (issue 33).

A dcm2niix sidecar says `MRAcquisitionType` (2D or 3D) and, for 2-D, `SliceThickness` and
`SpacingBetweenSlices`. For a 3-D acquisition the input is a k-space truncation (told
`--input-psf kspace`, scored by told_kspace.py). For a 2-D one, this scores the default command
nothing told against told a windowed-sinc slice profile (`--input-psf sinc`) and a box one, of
FWHM = the slice thickness, on multi-slice cells of the validation half (right half of
MNI152NLin6Asym). The rule is in NOTES.md, fixed before the run.

Usage: python benchmarks/experiments/33-blind/told_slices.py [VOLUME]
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

# label, factor, simulate keywords, slice thickness in mm (the spacing is the factor: 1 mm voxels)
CELLS = [("box 114", (1, 1, 4), {"slice_profile": "box", "slice_thickness": 4.0}),
         ("sinc 114", (1, 1, 4), {"slice_profile": "sinc", "slice_thickness": 4.0}),
         ("sinc 114 gap 25%", (1, 1, 4), {"slice_profile": "sinc", "slice_thickness": 3.0}),
         ("box 115", (1, 1, 5), {"slice_profile": "box", "slice_thickness": 5.0}),
         ("sinc 115 gap 25%", (1, 1, 5), {"slice_profile": "sinc", "slice_thickness": 3.75})]


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    table = {}
    for (label, _, kw), (hr, truth, mask, _, lr, base) in zip(CELLS, cells(volume, [(c[0], c[1], c[2]) for c in CELLS])):
        zooms = [float(v) for v in lr.header.get_zooms()[:3]]
        told_fwhm = (zooms[0], zooms[1], kw["slice_thickness"])
        row = {"spline": round(base, 2)}
        for name, opts in [("default", {}), ("told sinc", {"input_psf": "sinc", "input_fwhm": told_fwhm}),
                           ("told box", {"input_psf": "box", "input_fwhm": told_fwhm})]:
            out = mrsr_cli.upscale(lr, like=hr, **opts)
            row[name] = round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)
        table[label] = row
        print(label, row, flush=True)
    out = HERE / "results" / f"told_slices_{Path(volume).name.split('.')[0]}.json"
    out.write_text(json.dumps(table, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
