#!/usr/bin/env python3
"""Round 18's scores: round 16's measure, table and rule for a PSF-aware candidate fine-tuned on
0.5 mm data too.  Usage: score.py MODEL [--report-only]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import candidate_results, experiment_round  # noqa: E402

round16 = experiment_round("16-psf-input")
ABOUT = ("fine-tuned whole on round 13's training set (ICBM152 2009a, the left halves of MNI152NLin6Asym and of the "
         "deepmriprep 0.5 mm template, ROBEX) with `--voxel-size-range 0.5:1.5 --coarsen-only --psf-input --augment "
         "...,psf`, lr 5e-5, at most 36 min")

if __name__ == "__main__":
    model, results = candidate_results("18-psf-input-05mm", round16.measure)
    round16.report(model, results, "18-psf-input-05mm", ABOUT)
