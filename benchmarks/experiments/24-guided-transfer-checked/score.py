#!/usr/bin/env python3
"""Round 24's scores: round 23's scorer on `upscale --guidance transfer` with the check one scale
down (NOTES.md).  Writes results/scores.json and the 'guided-transfer-checked' section of
benchmarks/experiments/LOG.md; round 23's own section keeps its figures without the check."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import experiment_round  # noqa: E402

if __name__ == "__main__":
    experiment_round("23-guided-transfer").main(
        HERE / "results", "guided-transfer-checked",
        "## Guidance by transfer, checked one scale down (issue 21, round 24)",
        "round 23's local linear fit, its weight R² times the fraction of the network's error the transfer removed when "
        "the input, degraded once more, was upscaled back to its own grid; then data consistency")
