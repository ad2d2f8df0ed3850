#!/usr/bin/env python3
"""Round 20's scores: round 19's measure, table and rule, for data consistency whose data term
stays inside the output's view (`mrsr_cli.methods.consistency.in_view_operator`).  Writes
results/default.json and the 'consistency-fov' section of benchmarks/experiments/LOG.md.
Usage: score.py default [--report-only]"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import candidate_results, experiment_round  # noqa: E402

round19 = experiment_round("19-consistency")
TIMING = Path(__file__).resolve().parent / "results" / "timing.json"


def timing_line() -> str:
    """The time count's sentence from timing.py's results (run after the scores, alone)."""
    if not TIMING.exists():
        return ""
    median = json.loads(TIMING.read_text())["median"]
    return (f" Whole-brain ×2 upscale (`timing.py`, median of 3, CLI wall time): off {median['off']:.1f} s, auto "
            f"{median['auto']:.1f} s (limit 22 s).")

if __name__ == "__main__":
    _, results = candidate_results("20-consistency-fov", round19.measure)
    round19.report(results, "20-consistency-fov", "consistency-fov", "Data consistency inside the output's view",
                   ", leaving out the LR voxels whose PSF reaches output voxels outside the input's field of view",
                   timing_line())
