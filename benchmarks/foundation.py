#!/usr/bin/env python3
"""Time `mrsr simulate` and `mrsr upscale --method spline` on a 1 mm brain (×2), with peak RSS.

Input: MNI152NLin6Asym T1 1 mm (182×218×182).  Each command runs in its own process, so the
wall time includes start-up and NIfTI I/O, as a user sees it.  Writes the 'foundation'
section of docs/benchmarks.md.   Usage: python benchmarks/data.py && python benchmarks/foundation.py
"""

import tempfile
from pathlib import Path

from _common import DATA, MRSR, stamp, timed, write_section

src = DATA / "mni152nlin6asym_t1_1mm.nii.gz"
rows = []
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    cases = [
        ("simulate ×2 (1 mm → 2 mm)", MRSR + ["simulate", src, tmp / "lr.nii.gz", "--factor", "2"]),
        ("simulate ×(2,2,3) + Rician noise", MRSR + ["simulate", src, tmp / "lr3.nii.gz", "--factor", "2,2,3", "--noise", "0.02", "--seed", "0"]),
        ("upscale spline ×2 (2 mm → 1 mm)", MRSR + ["upscale", tmp / "lr.nii.gz", tmp / "sp.nii.gz", "--factor", "2", "--method", "spline"]),
        ("upscale spline ×2 (1 mm → 0.5 mm)", MRSR + ["upscale", src, tmp / "sp05.nii.gz", "--factor", "2", "--method", "spline"]),
    ]
    for label, cmd in cases:
        wall, peak, _ = timed(cmd)
        rows.append(f"| {label} | {wall:.2f} | {peak:.0f} |")
body = "\n".join([
    "## Foundation: simulate and spline upscale (issue 2)",
    "",
    f"`python benchmarks/foundation.py` — input MNI152NLin6Asym T1 1 mm, 182×218×182; one process per command "
    f"(start-up and NIfTI gzip I/O included). {stamp()}",
    "",
    "| command | wall (s) | peak RSS (MiB) |",
    "|---|---|---|",
    *rows,
])
write_section("foundation", body)
