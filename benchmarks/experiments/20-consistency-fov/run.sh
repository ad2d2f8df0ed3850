#!/usr/bin/env bash
# Round 20 (issue 21): round 19 again, with the data term kept inside the output's view against the
# same default without it, on round 10's volumes, noiseless, with Rician noise and with other PSFs;
# ship rule in NOTES.md. No training; about 30 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source benchmarks/experiments/_mni_halves.sh
.venv/bin/python benchmarks/experiments/20-consistency-fov/score.py default
.venv/bin/python benchmarks/experiments/20-consistency-fov/timing.py
