#!/usr/bin/env python3
"""Round 12's scores: round 11's scorer (right T2 half; spline, U, G with the right T1 half and
with wrong references) on the round-12 models at x3, x4 and (1,1,4).  Writes results/scores.json
and the 'guided-t2-large' section of benchmarks/experiments/LOG.md."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import experiment_round  # noqa: E402

round11 = experiment_round("11-guided-t2")

INTRO = ("`bash benchmarks/experiments/12-guided-t2-large/run.sh`: round 11's hemisphere split of SPM's "
         "avg152T2/avg152T1 (2 mm), with the T2 degraded further (x3, x4, 8 mm slices), where the LR loses "
         "structure the T1 keeps. G = the builtin `guided` fine-tuned on the left T2 half with the left T1 half "
         "as reference, U = `default` fine-tuned on the same T2 half unguided, same budget (600 steps, these "
         "three factors). Scored on the right T2 half (PSNR dB / SSIM, head mask). ")

if __name__ == "__main__":
    round11.score(round11.DATA / "guided-t2-large", ("3,3,3", "4,4,4", "1,1,4"), HERE / "results", "guided-t2-large",
                  "## Guided T2 with a real T1 reference at larger factors (issue 21, round 12)", INTRO)
