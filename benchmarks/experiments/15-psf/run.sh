#!/usr/bin/env bash
# Round 15 (issue 21): does the default over-sharpen when the LR image was blurred less (or
# otherwise) than `simulate`'s Gaussian of FWHM = one LR voxel, and does PSF-robust training fix it?
# Found while looking for the issue's "+1.1 dB at 0.5 mm": on a 0.5 mm crop, the default gains
# +5.5 dB over spline from a Gaussian LR but loses 8.4 dB to spline from an LR of FWHM 0.5 mm.
# P1 fine-tunes the shipped default with the stage-3 recipe (its data and factors) plus the new
# `psf` augmentation (each LR patch: Gaussian or box PSF, FWHM 0.5-1.25 LR voxels), at most 28 min.
# Question only (not a shipping round; fixed before the run): P1 is worth a shipping round if its
# worst PSNR gain over spline across the five PSFs of score.py beats the default's worst by >= 1 dB
# on both volumes, and at simulate's own PSF it loses at most 0.3 dB against the default on the
# MNI152NLin6Asym right half.  About 45 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/psf; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
[ -f $OUT/P1.safetensors ] || .venv/bin/mrsr train --config share/recipes/default-stage3.toml --init-from default \
    --augment flip,permute,intensity,affine,sharpness,psf --epochs 10 --max-minutes 28 \
    -o $OUT/P1.safetensors --log $OUT/P1.log.jsonl -q
.venv/bin/python benchmarks/experiments/15-psf/score.py $OUT/P1.safetensors
