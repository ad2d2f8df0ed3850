#!/usr/bin/env python3
"""Round 11's scores on the right T2 half: spline, unguided U, guided G with the right T1 half and
with wrong references.  Writes results/scores.json."""

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1].parent / "benchmarks"))
from _common import DATA, MRSR, ROOT, timed  # noqa: E402

OUT = DATA / "guided-t2"


def main() -> None:
    hr, t1 = OUT / "spm_t2_right.nii.gz", OUT / "spm_t1_right.nii.gz"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        img = nib.load(t1)
        data = np.asarray(img.dataobj, dtype=np.float32)
        wrong = {"mirrored T1": data[::-1].copy(), "noise": np.random.default_rng(0).uniform(0, data.max(), data.shape).astype(np.float32)}
        refs = {"T1": t1}
        for name, arr in wrong.items():
            refs[name] = tmp / f"{name.replace(' ', '_')}.nii.gz"
            nib.save(nib.Nifti1Image(arr, img.affine), str(refs[name]))
        for factor in ("2,2,2", "2,2,3"):
            lr = tmp / "lr.nii.gz"
            timed(MRSR + ["simulate", hr, lr, "--factor", factor, "--force"])
            outs = {"spline": ["--method", "spline"], "U": ["--model", OUT / "U.safetensors"]}
            outs.update({f"G, {k} reference": ["--model", OUT / "G.safetensors", "--reference", v] for k, v in refs.items()})
            paths = {}
            for tag, opts in outs.items():
                paths[tag] = tmp / f"{len(paths)}.nii.gz"
                timed(MRSR + ["upscale", lr, paths[tag], "--like", hr, "--force", *opts])
            rows = json.loads(timed(MRSR + ["evaluate", hr, *paths.values(), "--json"])[2])
            results[factor] = {t: {"psnr": r["psnr"], "ssim": r["ssim"]} for t, r in zip(paths, rows)}
            print(factor, {t: round(r["psnr"], 2) for t, r in zip(paths, rows)}, flush=True)
    out = ROOT / "benchmarks/experiments/11-guided-t2/results"
    out.mkdir(exist_ok=True)
    (out / "scores.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
