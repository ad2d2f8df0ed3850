#!/usr/bin/env bash
# Round 18 (issue 21): round 16's PSF channels (the whole default fine-tuned), now also on 0.5 mm
# data so the fine-tune cannot drift at 0.5 mm: round 13's training set (ICBM152 2009a, the left
# halves of MNI152NLin6Asym and of the deepmriprep 0.5 mm template, ROBEX) with every HR patch
# resampled to 0.5-1.5 mm but never finer than its volume (`--voxel-size-range 0.5:1.5
# --coarsen-only`), the recipe's lr 5e-5, at most 36 min; validation at simulate's PSF and half its
# FWHM picks the epoch. Ship rule: round 16's, fixed before the run (NOTES.md). About 75 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/psf-input; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
DMP=.data/deepmriprep_t1_05mm
[ -f ${DMP}_left.nii.gz ] || .venv/bin/python benchmarks/split_hemispheres.py $DMP.nii.gz
[ -f $OUT/Q3.safetensors ] || .venv/bin/mrsr train --config share/recipes/default-stage3.toml \
    .data/icbm152_2009a_t1.nii.gz $LEFT ${DMP}_left.nii.gz .data/robex_atlas_t1.nii.gz --init-from default \
    --voxel-size-range 0.5:1.5 --coarsen-only --psf-input --augment flip,permute,intensity,sharpness,psf \
    --lr 5e-5 --epochs 12 --max-minutes 36 --val $RIGHT --val-factor "$VF" -o $OUT/Q3.safetensors --log $OUT/Q3.log.jsonl -q
.venv/bin/python benchmarks/experiments/18-psf-input-05mm/score.py $OUT/Q3.safetensors
