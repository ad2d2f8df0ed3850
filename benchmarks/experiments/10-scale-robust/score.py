#!/usr/bin/env python3
"""Round 10's scores: a candidate model against the shipped default and spline, on the two
validation halves (the rule) and on Colin27 (reported only).  Usage: score.py MODEL"""

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import DATA, MRSR, ROOT, timed  # noqa: E402

CASES = {  # name: (file, crop or None, factors)
    "deepmriprep right half, 0.5 mm": ("deepmriprep_t1_05mm_right.nii.gz", (slice(0, 168), slice(40, 376), slice(30, 300)),
                                       ["2,2,2", "2,2,3", "1,1,4"]),
    "MNI152NLin6Asym right half, 1 mm": ("mni152nlin6asym_t1_1mm_right.nii.gz", None, ["2,2,2", "2,2,3", "3,3,3", "1,1,4"]),
    "Colin27, 1 mm (test)": ("colin27_ch2.nii.gz", (slice(0, 180), slice(0, 216), slice(0, 180)), ["2,2,2", "2,2,3", "1,1,4"]),
}


def main(model: str) -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case, (name, box, factors) in CASES.items():
            img = nib.load(DATA / name)
            hr = tmp / "hr.nii.gz"
            nib.save(img.slicer[box] if box else img, str(hr))
            for factor in factors:
                lr = tmp / "lr.nii.gz"
                timed(MRSR + ["simulate", hr, lr, "--factor", factor, "--force"])
                outs = {}
                for tag, opts in (("spline", ["--method", "spline"]), ("default", []), ("candidate", ["--model", model])):
                    outs[tag] = tmp / f"{tag}.nii.gz"
                    wall, _, _ = timed(MRSR + ["upscale", lr, outs[tag], "--like", hr, "--force", *opts])
                rows = json.loads(timed(MRSR + ["evaluate", hr, *outs.values(), "--json"])[2])
                results[f"{case} | {factor}"] = {t: r["psnr"] for t, r in zip(outs, rows)}
                print(case, factor, {t: round(r["psnr"], 2) for t, r in zip(outs, rows)}, flush=True)
    out = ROOT / "benchmarks/experiments/10-scale-robust/results"
    out.mkdir(exist_ok=True)
    (out / f"{Path(model).stem}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
