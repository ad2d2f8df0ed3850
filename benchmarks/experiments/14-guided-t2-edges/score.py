#!/usr/bin/env python3
"""Round 14's scores: round 11's scorer (right T2 half; spline, U, the edges-encoded GE with the
right T1 half and with wrong references) at x3, x4 and (1,1,4).  Writes results/scores.json and
the 'guided-t2-edges' section of benchmarks/experiments/LOG.md."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import experiment_round  # noqa: E402

round11 = experiment_round("11-guided-t2")

INTRO = ("`bash benchmarks/experiments/14-guided-t2-edges/run.sh`: round 12's setting (hemisphere split of SPM's "
         "avg152T2/avg152T1, 2 mm; x3, x4, 8 mm slices; 6 epochs x 1600 patches at 5e-5 for each model). "
         "G (\"GE\") = `default` with zero-weight reference channels added, trained on the left T2 half with the "
         "left T1 half read through the `edges` encoding (gradient magnitude); U = round 12's unguided fine-tune, "
         "from the same start with the same budget. Scored on the right T2 half (PSNR dB / SSIM, head mask). ")

if __name__ == "__main__":
    round11.score(round11.DATA / "guided-t2-edges", ("3,3,3", "4,4,4", "1,1,4"), HERE / "results", "guided-t2-edges",
                  "## Guided T2, edges-encoded T1 reference trained from the start (issue 21, round 14)", INTRO)
