#!/usr/bin/env bash
# Round 14 (issue 21, item 3; third attempt at the guided bar, a new idea rather than a new budget):
# rounds 11-12 fine-tuned the builtin `guided`, whose reference path was learned on synthetic,
# intensity-encoded references, and it never used the real T1.  Here GE starts from `default`
# (the reference channels added with zero weights, so it starts exactly where the unguided U
# starts) and reads its T1 through the contrast-agnostic `edges` encoding (gradient magnitude),
# trained from the start on the real pair.  Everything else is round 12's: left halves for
# training, right halves for scoring, x3 / x4 / (1,1,4), 6 epochs x 1600 patches of 25³ at 5e-5;
# U is round 12's (the same command, re-trained here if missing).
# Bars (issue 21, fixed before the run): GE >= U + 1 dB at each factor, and a wrong reference
# (T1 mirrored left-right, uniform noise) never costs more than 0.5 dB against U.
# About 25 min on 2 CPU cores.  Needs round 11's halves (its run.sh makes them).
set -euo pipefail
cd "$(dirname "$0")/../../.."
IN=.data/guided-t2; OUT=.data/guided-t2-edges; mkdir -p $OUT
[ -f $IN/spm_t2_left.nii.gz ] || { echo "run benchmarks/experiments/11-guided-t2/run.sh first" >&2; exit 1; }
F="3,3,3;4,4,4;1,1,4"
COMMON=(--scales "$F" --patch 25 --batch 16 --patches-per-epoch 1600 --epochs 6 --lr 5e-5
        --augment flip,permute,intensity --val-factor "$F" --precision bf16 --threads 2 --seed 5 -q --force)
[ -f $OUT/G.safetensors ] || .venv/bin/mrsr train $IN/spm_t2_left.nii.gz --reference $IN/spm_t1_left.nii.gz \
    --reference-encoding edges --init-from default --val $IN/spm_t2_right.nii.gz \
    -o $OUT/G.safetensors "${COMMON[@]}"
if [ ! -f $OUT/U.safetensors ]; then
    if [ -f .data/guided-t2-large/U.safetensors ]; then cp .data/guided-t2-large/U.safetensors $OUT/
    else .venv/bin/mrsr train $IN/spm_t2_left.nii.gz --init-from default --val $IN/spm_t2_right.nii.gz \
        -o $OUT/U.safetensors "${COMMON[@]}"; fi
fi
.venv/bin/python benchmarks/experiments/14-guided-t2-edges/score.py
