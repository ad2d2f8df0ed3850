#!/usr/bin/env bash
# Fifth round of the recipe choice (benchmarks/experiments/LOG.md, "How the default recipe was chosen"):
# the guided model of round 4 is a 5-epoch fine-tune of the default M24, and its validation
# curve had not settled.  Run guided-e20 is the same fine-tune (same data, seed, references,
# learning rate 1e-4) for up to 20 epochs, the learning rate halved every 8 (its first 5 epochs
# are round 4's, bit for bit), stopped after 46 minutes.  Its best epoch is then scored
# with the FLAIR-like reference (benchmarks/_common.py), like the round-4 models, and with pure
# noise as the reference (as is the round-4 guided model): how much of the score the reference
# brings.  Colin27 plays no part.  About 50 min on 2 CPU cores.
# Logs: .data/guided20/; `python benchmarks/experiments/report.py` writes the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/guided20; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
# the default of round 4 (M24; 04-longer/run.sh makes it too), which the guided model starts from
M24=.data/longer/M24.safetensors
[ -f $M24 ] || { mkdir -p .data/longer; git show c0526dd:share/models/mrsr-recnn-t1w.safetensors > $M24; }
# the recipe is the shipped guided model's (share/recipes/guided.toml), written here instead of share/models/
.venv/bin/mrsr train --config share/recipes/guided.toml -o $OUT/guided-e20.safetensors --log $OUT/guided-e20.log.jsonl -q
.venv/bin/python benchmarks/validate_model.py $OUT/guided-e20.safetensors $RIGHT --val-factor "$VF" --reference flair \
  > $OUT/guided-flair.jsonl
# the same with pure noise as the reference: what the model scores without any guidance
.venv/bin/python benchmarks/validate_model.py $OUT/guided-e20.safetensors $RIGHT --val-factor "$VF" --reference noise \
  > $OUT/guided-noise.jsonl
# and the guided model shipped in round 4, with noise as its reference
ROUND4=$OUT/guided-round4.safetensors
[ -f $ROUND4 ] || git show c0526dd:share/models/mrsr-recnn-guided.safetensors > $ROUND4
.venv/bin/python benchmarks/validate_model.py $ROUND4 $RIGHT --val-factor "$VF" --reference noise > $OUT/round4-guided-noise.jsonl
