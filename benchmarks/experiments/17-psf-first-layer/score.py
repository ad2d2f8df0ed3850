#!/usr/bin/env python3
"""Round 17's scores: round 16's measure and table for a candidate whose PSF channels were
trained alone (`--new-channels-only`), with round 17's rule (at simulate's PSF within 0.01 dB of
the default).  Usage: score.py MODEL [--report-only]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import candidate_results, experiment_round  # noqa: E402

round16 = experiment_round("16-psf-input")
ABOUT = ("the rest of the network frozen (`--new-channels-only`): only the first-layer weights of the PSF channels "
         "trained, with the stage-3 recipe plus `--psf-input --augment ...,psf` at lr 1e-3, at most 30 min")

if __name__ == "__main__":
    model, results = candidate_results("17-psf-first-layer", round16.measure)
    round16.report(model, results, "17-psf-first-layer", ABOUT, tolerance=0.01)
