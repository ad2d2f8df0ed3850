#!/usr/bin/env python3
"""Quality on the held-out Colin27 ch2 (never trained or tuned on): spline vs SRCNN3D vs ReCNN.

For each factor, `mrsr simulate` makes the LR image (Gaussian PSF, FWHM = LR voxel), then
`mrsr upscale --like HR` brings each method back onto the HR grid and `mrsr evaluate` scores it
inside the head mask (PSNR data range = reference 99.5th percentile).  ch2 is cropped to
180×216×180 so that the integer factors divide.  SRCNN3D is trained by
benchmarks/train_baselines.sh with the default model's data and factors, and as many patches as
its stages together (capped at 44 minutes; see that script).  Writes the 'quality' section of docs/benchmarks.md.
Usage: python benchmarks/quality.py [--factors "2,2,2;1,1,4"]
"""

import argparse
import json
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from _common import DATA, MRSR, ROOT, stamp, timed, write_section

FACTORS = "2,2,2;2,2,3;3,3,3;1,1,4;2,2.5,2"
parser = argparse.ArgumentParser()
parser.add_argument("--factors", default=FACTORS)
parser.add_argument("--srcnn", default=str(DATA / "models" / "srcnn3d.safetensors"))
parser.add_argument("--model", default="default")
args = parser.parse_args()

ch2 = nib.load(DATA / "colin27_ch2.nii.gz")
DEFAULT = "ReCNN (default model)"
# the default command runs a 2-pass flip self-ensemble; the single pass and the 8-pass one show what it buys
methods = [("spline", ["--method", "spline"]), ("ReCNN, 1 pass", ["--model", args.model, "--ensemble", "1"]),
           (DEFAULT, ["--model", args.model]), ("ReCNN, 8 passes", ["--model", args.model, "--ensemble", "8"])]
if Path(args.srcnn).exists():
    methods.insert(1, ("SRCNN3D", ["--model", args.srcnn]))
results = {}
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    hr = tmp / "ch2_hr.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(ch2.dataobj, dtype=np.float32)[:180, :216, :180], ch2.affine), hr)
    for factor in args.factors.split(";"):
        lr = tmp / "lr.nii.gz"
        timed(MRSR + ["simulate", hr, lr, "--factor", factor, "--force"])
        outs, times = [], {}
        for name, opts in methods:
            out = tmp / f"{len(outs)}.nii.gz"
            wall, peak, _ = timed(MRSR + ["upscale", lr, out, "--like", hr, "--force", *opts])
            times[name] = (wall, peak)
            outs.append(out)
        _, _, stdout = timed(MRSR + ["evaluate", hr, *outs, "--json"])
        rows = json.loads(stdout)
        results[factor] = {name: {**row, "seconds": times[name][0], "peak_mib": times[name][1]} for (name, _), row in zip(methods, rows)}
        print(factor, {k: round(v["psnr"], 3) for k, v in results[factor].items()}, flush=True)

(ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
(ROOT / "benchmarks" / "results" / "quality.json").write_text(json.dumps(results, indent=2))
names = [n for n, _ in methods]
lines = [
    "## Quality on held-out Colin27 (issue 3)",
    "",
    f"`python benchmarks/quality.py` — Colin27 `ch2.nii.gz` (1 mm, cropped to 180×216×180), LR simulated by `mrsr simulate` "
    f"(Gaussian PSF, FWHM = LR voxel), upscaled with `--like` onto the HR grid, scored by `mrsr evaluate` in the head mask. "
    f"The models never saw ch2 (trained on the MNI templates only). Upscale wall time includes process start-up and I/O. {stamp()}",
    "",
    "`upscale` runs the network on the input and on its mirror image along one voxel axis and averages the two "
    "(`--ensemble 2`, the default; SRCNN3D is run the same way); the rows with 1 and 8 passes show what that buys.",
    "",
    "| factor | " + " | ".join(f"{n} PSNR / SSIM" for n in names) + " | ReCNN − spline (dB): 1 pass / default / 8 passes |",
    "|---|" + "---|" * (len(names) + 1),
]
for factor, res in results.items():
    gains = [res[n]["psnr"] - res["spline"]["psnr"] for n in ("ReCNN, 1 pass", DEFAULT, "ReCNN, 8 passes")]
    cells = " | ".join(f"{res[n]['psnr']:.2f} / {res[n]['ssim']:.4f}" for n in names)
    lines.append(f"| ({factor}) | {cells} | {gains[0]:+.2f} / **{gains[1]:+.2f}** / {gains[2]:+.2f} |")
lines += ["", "Upscale wall time (s) at each factor, default model (1 pass / default 2 passes / 8 passes): " + ", ".join(
    f"({f}) {r['ReCNN, 1 pass']['seconds']:.1f} / {r[DEFAULT]['seconds']:.1f} / {r['ReCNN, 8 passes']['seconds']:.1f}"
    for f, r in results.items())]
write_section("quality", "\n".join(lines))
