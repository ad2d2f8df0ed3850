#!/usr/bin/env python3
"""Round 20's time count: a whole-brain x2 upscale through the CLI (MNI152NLin6Asym simulated at
x2, 182x218x182 output voxels, default 2 passes, wall time incl. start-up and I/O), with
`--consistency off` and `auto`, three runs each; writes results/timing.json (median seconds).
Run alone: other work on the machine slows it."""

import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import DATA, MRSR, stamp, timed  # noqa: E402

WHOLE = DATA / "mni152nlin6asym_t1_1mm.nii.gz"

with tempfile.TemporaryDirectory() as tmp:
    lr = Path(tmp) / "lr.nii.gz"
    timed(MRSR + ["simulate", WHOLE, lr, "--factor", "2", "--force"])
    seconds = {mode: [] for mode in ("off", "auto")}
    for _ in range(3):
        for mode in seconds:
            wall, _, _ = timed(MRSR + ["upscale", lr, Path(tmp) / "sr.nii.gz", "--like", WHOLE, "--consistency", mode, "--force"])
            seconds[mode].append(round(wall, 2))
result = {"seconds": seconds, "median": {m: statistics.median(s) for m, s in seconds.items()}, "stamp": stamp()}
(HERE / "results" / "timing.json").write_text(json.dumps(result, indent=1))
print(result)
