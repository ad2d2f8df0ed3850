#!/usr/bin/env bash
# Eighth round of the recipe choice (benchmarks/experiments/LOG.md, "How the default recipe was chosen"):
# rounds 4-5 showed that a guided model reading its reference's intensities learns to ignore
# it (noise in its place scores the same).  Run E20 gives the network the reference's edges
# instead (`--reference-encoding edges`: gradient magnitude, the same for any contrast), and
# is otherwise round 5's guided fine-tune (synthetic references, tissue maps, augmentation,
# learning rate 1e-4 halved every 8, seed 3), started from the current default (round 7's T16)
# with that model's factor list, stopped after 40 minutes.  Its best epoch is scored with the FLAIR-like reference and with
# pure noise (benchmarks/validate_model.py).  Shipping rule, fixed before the run: ship as
# `guided` if with the FLAIR-like reference its mean validation PSNR beats both the unguided
# default's and its own with noise by at least 0.30 dB.  Colin27 plays no part.
# About 45 min on 2 CPU cores.  Logs: .data/edges/; `python benchmarks/experiments/report.py` writes the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/edges; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
BASE=.data/thick/T16.safetensors
[ -f $BASE ] || bash benchmarks/experiments/07-thick/run.sh
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/E20.safetensors --name guided --val $RIGHT \
  --init-from $BASE --synthetic-reference --reference-encoding edges \
  --tissue-map .data/icbm152_2009a_gm.nii.gz --tissue-map .data/icbm152_2009a_wm.nii.gz \
  --patch 25 --batch 16 --scales "2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;1,1,4;1,1,3.5;1,1,5;2,2.5,2" \
  --patches-per-epoch 1600 --epochs 20 --lr 1e-4 --lr-decay 0.5@8 --loss psnr \
  --augment flip,permute,intensity,affine,sharpness --val-factor "$VF" \
  --max-minutes 40 --seed 3 --threads 2 --force -q --log $OUT/E20.log.jsonl
.venv/bin/python benchmarks/validate_model.py $OUT/E20.safetensors $RIGHT --val-factor "$VF" --reference flair > $OUT/edges-flair.jsonl
.venv/bin/python benchmarks/validate_model.py $OUT/E20.safetensors $RIGHT --val-factor "$VF" --reference noise > $OUT/edges-noise.jsonl
