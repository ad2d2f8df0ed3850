#!/usr/bin/env bash
# Round 23 (issue 21): `upscale --guidance transfer` (no training) on the right T2 half of SPM's
# avg152 pair; bar and parameters in NOTES.md. Needs round 11's halves and round 14's U
# (benchmarks/experiments/{11-guided-t2,14-guided-t2-edges}/run.sh). A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
.venv/bin/python benchmarks/experiments/23-guided-transfer/score.py
