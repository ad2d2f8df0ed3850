#!/usr/bin/env bash
# Round 22 (issue 21): round 16's five-PSF table for the builtin psf-aware told the PSF, now that the
# default command runs data consistency (round 20); a measurement, no rule (NOTES.md). About 20 min.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source benchmarks/experiments/_mni_halves.sh
.venv/bin/python benchmarks/experiments/22-psf-aware-consistency/score.py psf-aware
