#!/usr/bin/env bash
# Round 21 (issue 21): round 14's guided (G) and unguided (U) T2 models scored again with the default
# command, which now runs data consistency (round 20); bar in NOTES.md. Needs round 14's models
# (bash benchmarks/experiments/14-guided-t2-edges/run.sh). A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
.venv/bin/python benchmarks/experiments/21-guided-consistency/score.py
