#!/usr/bin/env bash
# Sixth round of the recipe choice (docs/benchmarks.md, "How the default recipe was chosen"):
# round 5's guided fine-tune, which ignores its reference, showed that the default network
# still improves when trained at learning rate 1e-4 and then 5e-5, above the 5e-5 -> 1.25e-5 of
# the default's stage 2.  Run D24 is the default's stage 2 (M24: same data, seed, schedule, 24
# epochs, halved every 8) started at 1e-4 instead of 5e-5, within the same CPU budget (stopped
# after 53 minutes, M24's time).  Colin27 plays no part.  About 55 min on 2 CPU cores.
# Log: .data/lr1e4/; `python benchmarks/recipe_report.py` writes the table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.data/lr1e4; mkdir -p $OUT
source benchmarks/_mni_halves.sh
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/D24.safetensors --name default --val $RIGHT \
  --init-from .data/models/recnn-x2-stage1.safetensors --patch 25 --batch 16 \
  --scales "2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;2,2.5,2" --patches-per-epoch 1600 --epochs 24 --lr-decay 0.5@8 \
  --lr 1e-4 --loss psnr --augment flip,permute,intensity,affine,sharpness --val-factor "$VF" \
  --seed 2 --threads 2 --max-minutes 53 --force -q --log $OUT/D24.log.jsonl
