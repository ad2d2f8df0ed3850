#!/usr/bin/env bash
# Sixth round of the recipe choice (benchmarks/experiments/LOG.md, "How the default recipe was chosen"):
# round 5's guided fine-tune, which ignores its reference, showed that the default network
# still improves when trained at learning rate 1e-4 and then 5e-5, above the 5e-5 -> 1.25e-5 of
# the default's stage 2.  Run D24 is the default's stage 2 (M24: same data, seed, schedule, 24
# epochs, halved every 8) started at 1e-4 instead of 5e-5, within the same CPU budget (stopped
# after 53 minutes, M24's time).  Colin27 plays no part.  About 55 min on 2 CPU cores.
# Log: .data/lr1e4/; `python benchmarks/experiments/report.py` writes the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/lr1e4; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
# the recipe is the default's stage 2 (share/recipes/default-stage2.toml, whose output is $OUT/D24)
.venv/bin/mrsr train --config share/recipes/default-stage2.toml -q
