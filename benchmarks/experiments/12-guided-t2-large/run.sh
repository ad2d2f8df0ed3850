#!/usr/bin/env bash
# Round 12 (issue 21, item 3): round 11's real T1/T2 pair at larger factors.  Round 11 found that
# at x2 and (2,2,3) the LR avg152T2 keeps almost everything, so the guided model learned to
# ignore its T1.  Here the T2 is degraded further (x3, x4 and 8 mm thick slices (1,1,4)), where
# the LR loses structure that the T1 reference still shows.  Same split (train on the left
# halves, score on the right), same budget for both models (6 epochs x 1600 patches of 25³,
# lr 5e-5):
#   G: the builtin `guided` fine-tuned with the left T1 half as its reference;
#   U: the builtin `default` fine-tuned unguided on the same T2 half.
# Bars (issue 21, fixed before the run): G >= U + 1 dB at each factor, and a wrong reference
# (T1 mirrored left-right, uniform noise) never costs more than 0.5 dB against U.
# About 25 min on 2 CPU cores.  Needs round 11's halves (its run.sh makes them).
set -euo pipefail
cd "$(dirname "$0")/../../.."
IN=.data/guided-t2; OUT=.data/guided-t2-large; mkdir -p $OUT
[ -f $IN/spm_t2_left.nii.gz ] || { echo "run benchmarks/experiments/11-guided-t2/run.sh first" >&2; exit 1; }
F="3,3,3;4,4,4;1,1,4"
COMMON=(--scales "$F" --patch 25 --batch 16 --patches-per-epoch 1600 --epochs 6 --lr 5e-5
        --augment flip,permute,intensity --val-factor "$F" --precision bf16 --threads 2 --seed 5 -q --force)
[ -f $OUT/G.safetensors ] || .venv/bin/mrsr train $IN/spm_t2_left.nii.gz --reference $IN/spm_t1_left.nii.gz \
    --init-from guided --val $IN/spm_t2_right.nii.gz \
    -o $OUT/G.safetensors "${COMMON[@]}"
[ -f $OUT/U.safetensors ] || .venv/bin/mrsr train $IN/spm_t2_left.nii.gz --init-from default \
    --val $IN/spm_t2_right.nii.gz -o $OUT/U.safetensors "${COMMON[@]}"
.venv/bin/python benchmarks/experiments/12-guided-t2-large/score.py
