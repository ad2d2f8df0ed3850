#!/usr/bin/env bash
# Second round of the recipe choice (docs/models.md, "How the default model was trained"):
# validate on a volume as sharp as a single-subject scan.  Every run fine-tunes stage 1 of the
# default (.data/models/recnn-x2-stage1.safetensors, from benchmarks/experiments/01-ablation/run.sh run A) on
# the LEFT hemisphere of ICBM152 2009a and validates on its RIGHT hemisphere (8 mm gap;
# benchmarks/split_hemispheres.py).  Colin27 plays no part.  About 70 min on 2 CPU cores.
# Logs: .data/sharpval/*.log.jsonl; then `python benchmarks/experiments/report.py` writes the tables.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/sharpval; mkdir -p $OUT
.venv/bin/python benchmarks/split_hemispheres.py .data/icbm152_2009a_t1.nii.gz
LEFT=.data/icbm152_2009a_t1_left.nii.gz; RIGHT=.data/icbm152_2009a_t1_right.nii.gz
STAGE1=.data/models/recnn-x2-stage1.safetensors
MIX="2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;2,2.5,2"
VF="2,2,2;2,2,3;3,3,3;1,1,4"
.venv/bin/python benchmarks/validate_model.py $STAGE1 $RIGHT --val-factor "$VF" > $OUT/stage1.json
run() { name=$1; shift; .venv/bin/mrsr train $LEFT -o $OUT/$name.safetensors --val $RIGHT --init-from $STAGE1 \
  --patches-per-epoch 1600 --seed 2 --threads 2 --force -q --log $OUT/$name.log.jsonl "$@"; }
# (the epochs are those we ran before stopping each run by hand)
run I --scales "$MIX" --val-factor "$VF" --loss psnr --lr 5e-5 --augment flip,permute,intensity,affine,sharpness --epochs 3
run J --scales "$MIX" --val-factor "$VF" --loss psnr --lr 5e-5 --augment flip,permute,intensity,affine --epochs 2
run K --scales 2,2,2 --val-factor "2,2,2;1,1,4" --blind --loss mse --epochs 2
run L --scales "$MIX" --val-factor "$VF" --loss psnr --lr 5e-5 --augment flip,permute,intensity --epochs 9
# L, rejected: scored on the other template (round 1's validation volume)
.venv/bin/python benchmarks/validate_model.py $OUT/L.safetensors .data/mni152nlin6asym_t1_1mm.nii.gz --val-factor "$VF" > $OUT/L-on-nlin6.json
# the guided model fine-tuned from L the same way (rejected with L; its curve: benchmarks/experiments/02-sharpval/results/L-guided.log.jsonl)
.venv/bin/python benchmarks/split_hemispheres.py .data/icbm152_2009a_gm.nii.gz .data/icbm152_2009a_wm.nii.gz
.venv/bin/mrsr train $LEFT -o $OUT/L-guided.safetensors --init-from $OUT/L.safetensors --synthetic-reference \
  --tissue-map .data/icbm152_2009a_gm_left.nii.gz --tissue-map .data/icbm152_2009a_wm_left.nii.gz \
  --scales "$MIX" --patches-per-epoch 1600 --epochs 20 --max-minutes 13 --lr 1e-4 --loss psnr --augment flip,permute,intensity \
  --val $RIGHT --val-factor "$VF" --seed 3 --threads 2 --force -q --log $OUT/L-guided.log.jsonl
