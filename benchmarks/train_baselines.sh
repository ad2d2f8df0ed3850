#!/usr/bin/env bash
# SRCNN3D baseline with the same training budget (data, factors, patches) as the default model
# (share/models/README.md), capped at MAX_MINUTES (default 20) of wall time.
# Output: .data/models/srcnn3d.safetensors (not shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS=${ITERS:-$(.venv/bin/python -c "from mrsr_cli.models.store import read_header; print(read_header('share/models/mrsr-recnn-t1w.safetensors')[0]['training']['iterations'])")}
EPOCHS=$(( (ITERS + 299) / 300 ))  # same schedule as the default model: 300 iterations (4800 patches) per epoch
mkdir -p .data/models
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz .data/mni152nlin6asym_t1_1mm.nii.gz \
  -o .data/models/srcnn3d.safetensors --name srcnn3d --arch srcnn3d --patch 25 --batch 16 \
  --scales "2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;2,2.5,2" --scale-range 1.2:4 \
  --patches-per-epoch 4800 --epochs $EPOCHS --lr 4e-4 --lr-decay 0.5@4 \
  --augment flip,permute,intensity --seed 1 --threads 2 --max-minutes ${MAX_MINUTES:-20} --force -v
