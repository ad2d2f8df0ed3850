#!/usr/bin/env bash
# Round 24 (issue 21): `upscale --guidance transfer` with the check one scale down, on the right T2
# half of SPM's avg152 pair (round 23's scorer), then the held-out Colin27 rows of
# benchmarks/multimodal.py; rule in NOTES.md. Needs round 11's halves and round 14's U. About 15 min.
set -euo pipefail
cd "$(dirname "$0")/../../.."
.venv/bin/python benchmarks/experiments/24-guided-transfer-checked/score.py
(cd benchmarks && ../.venv/bin/python multimodal.py)
