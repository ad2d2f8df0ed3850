#!/usr/bin/env python3
"""How many flip self-ensemble passes (`upscale --ensemble N`) to run by default.

Scores the default model on the validation volume (right half of MNI152NLin6Asym, the half the
default model did not train on; never Colin27) at the four validation factors with
N = 1, 2, 4, 8 passes (`benchmarks/validate_model.py`), and times a whole-brain ×2 upscale
through the CLI for each N (a simulated ×2 LR image of that same template, 182×218×182 output
voxels).  The default N is the largest whose whole-brain time stays well under a minute.
Writes the 'ensemble' section of docs/benchmarks.md and benchmarks/results/ensemble.json.

    python benchmarks/ensemble.py
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DATA, MRSR, ROOT, stamp, timed, write_section
from mrsr_cli.infer.tiling import ENSEMBLE_SIZES
from validate_model import score

FACTORS = "2,2,2;2,2,3;3,3,3;1,1,4"
VAL = DATA / "mni152nlin6asym_t1_1mm_right.nii.gz"
WHOLE = DATA / "mni152nlin6asym_t1_1mm.nii.gz"

results = {}
factors = [[float(x) for x in f.split(",")] for f in FACTORS.split(";")]
with tempfile.TemporaryDirectory() as tmp:
    lr = Path(tmp) / "lr.nii.gz"
    timed(MRSR + ["simulate", WHOLE, lr, "--factor", "2", "--force"])
    for passes in ENSEMBLE_SIZES:
        started = time.perf_counter()
        scores = score("default", str(VAL), factors, threads=2, ensemble=passes)
        val_seconds = time.perf_counter() - started
        wall, peak, _ = timed(MRSR + ["upscale", lr, Path(tmp) / "sr.nii.gz", "--like", WHOLE, "--ensemble", str(passes), "--force"])
        results[passes] = {**scores, "validation_seconds": round(val_seconds, 1), "upscale_seconds": round(wall, 2),
                           "upscale_peak_mib": round(peak)}
        print(passes, results[passes], flush=True)

(ROOT / "benchmarks" / "results" / "ensemble.json").write_text(json.dumps(results, indent=2))
lines = [
    "## Flip self-ensemble: how many passes (issue 3)",
    "",
    "`python benchmarks/ensemble.py` — the default model on the validation half (right half of MNI152NLin6Asym, "
    f"which it did not train on), gain over spline (dB, head mask) at ({FACTORS.replace(';', '), (')}), with N passes "
    "of `upscale --ensemble N`; and a whole-brain ×2 upscale of that template through the CLI (182×218×182 output "
    f"voxels, wall time incl. start-up and I/O). {stamp()}",
    "",
    "| passes N | gain over spline (dB) | mean PSNR (dB) | whole-brain ×2 upscale (s) | peak RSS (MiB) |",
    "|---|---|---|---|---|",
]
for passes, r in results.items():
    gains = ", ".join(f"{g:+.2f}" for g in r["val_gain_per_factor"])
    lines.append(f"| {passes} | [{gains}] | {r['val_psnr']:.2f} | {r['upscale_seconds']:.1f} | {r['upscale_peak_mib']} |")
single = np.array(results[1]["val_gain_per_factor"])
best = np.array(results[8]["val_gain_per_factor"])
lines += ["", f"Eight passes add {', '.join(f'{g:+.2f}' for g in best - single)} dB to a single pass; two passes, "
          f"{', '.join(f'{g:+.2f}' for g in np.array(results[2]['val_gain_per_factor']) - single)} dB. The default, 2, "
          f"keeps a whole-brain ×2 upscale at about {results[2]['upscale_seconds']:.0f} s on this machine (4 passes take "
          f"{results[4]['upscale_seconds']:.0f} s); `--ensemble 8` is the quality setting. Held-out Colin27 with 1, 2 and 8 passes: quality section."]
write_section("ensemble", "\n".join(lines))
