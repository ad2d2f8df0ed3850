#!/usr/bin/env bash
# Seventh round of the recipe choice (docs/benchmarks.md, "How the default recipe was chosen"):
# after round 6 the default meets every quality bar of issue #3 on Colin27 but thick slices
# (1,1,4), and its validation curve was still rising at its last epoch.  Run T16 continues the
# round-6 default (D24, recipe_lr.sh) for up to 16 epochs at learning rate 5e-5, halved every 6,
# on a mix in which thick-slice factors (1,1,3.5), (1,1,4) x3 and (1,1,5) are 5 of 9 entries
# (they were 2 of 7), stopped after 40 minutes.  Shipping rule, fixed before the run: ship the
# best epoch if its (1,1,4) validation gain beats D24's best epoch (+2.764 dB) by at least
# 0.25 dB and its mean validation PSNR is at most 0.10 dB below D24's (36.856 dB).
# Colin27 plays no part.  About 42 min on 2 CPU cores.
# Log: .data/thick/; `python benchmarks/recipe_report.py` writes the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.data/thick; mkdir -p $OUT
source benchmarks/_mni_halves.sh
D24=.data/lr1e4/D24.safetensors
[ -f $D24 ] || bash benchmarks/recipe_lr.sh
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/T16.safetensors --name default --val $RIGHT \
  --init-from $D24 --patch 25 --batch 16 \
  --scales "2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;1,1,4;1,1,3.5;1,1,5;2,2.5,2" --patches-per-epoch 1600 --epochs 16 \
  --lr 5e-5 --lr-decay 0.5@6 --loss psnr --augment flip,permute,intensity,affine,sharpness \
  --val-factor "$VF" --seed 4 --threads 2 --max-minutes 40 --force -q --log $OUT/T16.log.jsonl
