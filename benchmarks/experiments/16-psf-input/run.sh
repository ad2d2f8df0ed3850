#!/usr/bin/env bash
# Round 16 (issue 21): tell the network the LR image's PSF (`train --psf-input`, `upscale --input-fwhm
# --input-psf`), so one model is sharp at simulate's PSF and safe on sharper LR images (round 15).
# Q1 fine-tunes the shipped default with the stage-3 recipe plus the `psf` augmentation and 3 zero-
# initialised PSF channels (FWHM 0.25-1.5 LR voxels, Gaussian or box; simulate's own PSF in one patch
# of three), at most 32 min.  Ship rule (fixed before the run; NOTES.md): told the true PSF, Q1's worst
# x2 gain over spline across round 15's five PSFs is >= 0 dB on both validation halves, and at
# simulate's PSF it loses at most 0.15 dB against the default on both, and Colin27 x2 stays >= +3.8 dB.
# About 65 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/psf-input; mkdir -p $OUT
source benchmarks/experiments/_mni_halves.sh
[ -f $OUT/Q1.safetensors ] || .venv/bin/mrsr train --config share/recipes/default-stage3.toml --init-from default \
    --psf-input --augment flip,permute,intensity,affine,sharpness,psf --lr 1e-4 --epochs 12 --max-minutes 32 \
    -o $OUT/Q1.safetensors --log $OUT/Q1.log.jsonl -q
.venv/bin/python benchmarks/experiments/16-psf-input/score.py $OUT/Q1.safetensors
