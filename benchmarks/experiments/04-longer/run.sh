#!/usr/bin/env bash
# Fourth round of the recipe choice (docs/models.md, "How the default model was trained"):
# round 3's stage 2 (run M) was still improving when it stopped after 6 epochs, and the CPU
# hour that issue 3 allows was half spent.  Run M24 trains M's stage 2 for 24 epochs, halving
# the learning rate every 8 (its first 6 epochs are M's, bit for bit).  Then the guided model
# is fine-tuned from M24 (learning rates 1e-4 and 5e-5) with synthetic references shifted by at
# most mrsr_cli.training.augment.REFERENCE_SHIFT_VOXELS (the residual error of `upscale --register`,
# benchmarks/registration_accuracy.py; it was 0.5 voxel), and the guided models, the previous
# one and both new ones, are scored on the validation half with a FLAIR-like reference, a
# contrast no model trained on (benchmarks/_common.py).  Colin27 plays no part.  About 95 min on 2 CPU cores.
# Logs: .data/longer/; `python benchmarks/experiments/report.py` writes the tables.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/longer; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
STAGE1=.data/models/recnn-x2-stage1.safetensors
PREVIOUS_GUIDED=$OUT/guided-round3.safetensors  # the guided model before round 4, from git history
[ -f $PREVIOUS_GUIDED ] || git show 3db18b4:share/models/mrsr-recnn-guided.safetensors > $PREVIOUS_GUIDED
SCALES="2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;2,2.5,2"
AUG=flip,permute,intensity,affine,sharpness
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/M24.safetensors --name default --val $RIGHT \
  --init-from $STAGE1 --patch 25 --batch 16 --scales "$SCALES" --patches-per-epoch 1600 --epochs 24 --lr-decay 0.5@8 \
  --lr 5e-5 --loss psnr --augment $AUG --val-factor "$VF" --seed 2 --threads 2 --force -q --log $OUT/M24.log.jsonl
# the guided fine-tune at round 3's learning rate (shipped: both validations rank it first) and at stage 2's
for run in "guided-lr1e-4 1e-4" "guided-lr5e-5 5e-5"; do
  set -- $run
  .venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/$1.safetensors --name guided --val $RIGHT \
    --init-from $OUT/M24.safetensors --synthetic-reference \
    --tissue-map .data/icbm152_2009a_gm.nii.gz --tissue-map .data/icbm152_2009a_wm.nii.gz \
    --patch 25 --batch 16 --scales "$SCALES" --patches-per-epoch 1600 --epochs 5 --lr $2 --loss psnr --augment $AUG \
    --val-factor "$VF" --seed 3 --threads 2 --force -q --log $OUT/$1.log.jsonl
done
for m in $PREVIOUS_GUIDED $OUT/guided-lr1e-4.safetensors $OUT/guided-lr5e-5.safetensors; do
  .venv/bin/python benchmarks/validate_model.py $m $RIGHT --val-factor "$VF" --reference flair
done > $OUT/guided-flair.jsonl
