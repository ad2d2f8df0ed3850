#!/usr/bin/env bash
# Seventh round of the recipe choice (benchmarks/experiments/LOG.md, "How the default recipe was chosen"):
# after round 6 the default meets every quality bar of issue #3 on Colin27 but thick slices
# (1,1,4), and its validation curve was still rising at its last epoch.  Run T16 continues the
# round-6 default (D24, 06-lr/run.sh) for up to 16 epochs at learning rate 5e-5, halved every 6,
# on a mix in which thick-slice factors (1,1,3.5), (1,1,4) x3 and (1,1,5) are 5 of 9 entries
# (they were 2 of 7), stopped after 40 minutes.  Shipping rule, fixed before the run: ship the
# best epoch if its (1,1,4) validation gain beats D24's best epoch (+2.764 dB) by at least
# 0.25 dB and its mean validation PSNR is at most 0.10 dB below D24's (36.856 dB).
# Colin27 plays no part.  About 42 min on 2 CPU cores.
# Log: .data/thick/; `python benchmarks/experiments/report.py` writes the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/thick; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
D24=.data/lr1e4/D24.safetensors
[ -f $D24 ] || bash benchmarks/experiments/06-lr/run.sh
# the recipe is the default's stage 3 (share/recipes/default-stage3.toml), written here instead of share/models/
.venv/bin/mrsr train --config share/recipes/default-stage3.toml -o $OUT/T16.safetensors --log $OUT/T16.log.jsonl -q
