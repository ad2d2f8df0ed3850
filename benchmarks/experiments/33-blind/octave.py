#!/usr/bin/env python3
"""Round 33 §7: the octave-transfer proxy of issue 33, item 5.

Does a network trained one octave coarser than it is used (as any model is, used at 0.5 mm after
training at 1 mm) lose to one trained at the scale of use, and does `upscale --adapt` win it back?
O2 learns 4 -> 2 mm from the two training templates reduced to 2 mm by `mrsr simulate --factor 2`;
O1, the control, learns 2 -> 1 mm from the same templates at 1 mm, with the same recipe and budget.
Both are tested 2 -> 1 mm on held-out Colin27 (simulate's Gaussian ×2), the default command, with
and without `--adapt 300 --seed 0`. The rule is in NOTES.md §7, fixed before the run.

Usage, from the repository root:
  python benchmarks/experiments/33-blind/octave.py prepare      # the 2 mm templates in .data/octave/
  mrsr train --config benchmarks/experiments/33-blind/O1.toml
  mrsr train --config benchmarks/experiments/33-blind/O2.toml
  python benchmarks/experiments/33-blind/octave.py evaluate     # results/octave.json
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

OCTAVE = DATA / "octave"
REDUCE = {"icbm152_2009a_t1.nii.gz": "icbm152_2009a_t1_2mm.nii.gz",
          "mni152nlin6asym_t1_1mm_left.nii.gz": "mni152nlin6asym_t1_left_2mm.nii.gz",
          "mni152nlin6asym_t1_1mm_right.nii.gz": "mni152nlin6asym_t1_right_2mm.nii.gz"}
STEPS = 300


def load(path: Path) -> nib.Nifti1Image:
    img = nib.load(str(path))
    return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32).reshape(img.shape[:3]), img.affine)


def prepare() -> None:
    OCTAVE.mkdir(parents=True, exist_ok=True)
    for source, reduced in REDUCE.items():
        lr = mrsr_cli.simulate(load(DATA / source), factor=2)
        nib.save(lr, str(OCTAVE / reduced))
        print("wrote", OCTAVE / reduced, lr.shape, lr.header.get_zooms()[:3])


def evaluate() -> None:
    hr = load(DATA / "colin27_ch2.nii.gz")
    truth = hr.get_fdata(dtype=np.float32)
    mask = head_mask(truth)
    lr = mrsr_cli.simulate(hr, factor=2)
    base = psnr(truth, mrsr_cli.upscale(lr, like=hr, method="spline").get_fdata(dtype=np.float32), mask)
    results = {"machine": machine(), "steps": STEPS, "spline_psnr": round(base, 2), "models": {}}
    for name in ("O1", "O2"):
        row = {}
        for label, extra in (("without", {}), ("with_adapt", {"adapt": STEPS, "seed": 0})):
            start = time.perf_counter()
            out = mrsr_cli.upscale(lr, like=hr, model=str(OCTAVE / f"{name}.safetensors"), **extra)
            row[f"{label}_gain_db"] = round(psnr(truth, out.get_fdata(dtype=np.float32), mask) - base, 2)
            row[f"{label}_seconds"] = round(time.perf_counter() - start, 1)
        results["models"][name] = row
        print(name, json.dumps(row), flush=True)
    (HERE / "results" / "octave.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    {"prepare": prepare, "evaluate": evaluate}[sys.argv[1]]()
