#!/usr/bin/env bash
# How the default model's recipe was chosen (docs/models.md, "How the default model was trained").
# Every run trains on ICBM152 2009a only and validates on MNI152NLin6Asym (the other template:
# a held-out template, never Colin27).  About 1 h on 2 CPU cores.  Logs: .data/ablation/*.log.jsonl;
# then `python benchmarks/experiments/report.py .data/ablation` writes the table.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/ablation; mkdir -p $OUT
T1=.data/icbm152_2009a_t1.nii.gz; VAL=.data/mni152nlin6asym_t1_1mm.nii.gz
MIX="2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;2,2.5,2"
VF="2,2,2;2,2,3;3,3,3;1,1,4"
run() { name=$1; shift; .venv/bin/mrsr train $T1 -o $OUT/$name.safetensors --val $VAL --threads 2 --force -q "$@"; }
# A: x2 only (= stage 1 of the default), paper's loss, blind
run A --blind --loss mse --layers 10 --filters 32 --scales 2,2,2 --patches-per-epoch 1600 --epochs 50 --max-minutes 12 --seed 1
# B: blind multiscale from scratch, list + per-axis range 1.2-4
run B --blind --loss mse --layers 10 --filters 32 --scales "2,2,2;2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;2,2.5,2" --scale-range 1.2:4 \
  --patches-per-epoch 1600 --epochs 50 --max-minutes 12 --seed 1
# C: factor input, multiscale list, from scratch
run C --loss mse --layers 12 --filters 32 --scales "2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;2,2.5,2" --patches-per-epoch 1600 \
  --epochs 80 --max-minutes 10 --seed 1
# F2, F3, G, H: multiscale fine-tunes of A with factor input, validated at four factors
# (the epochs are those we ran before stopping each run by hand: the trend was clear)
ft() { name=$1; shift; run $name --init-from $OUT/A.safetensors --scales "$MIX" --patches-per-epoch 1600 --val-factor "$VF" --seed 2 "$@"; }
ft F2 --loss mse --lr 2e-5 --epochs 2
ft F3 --loss psnr --lr 2e-5 --epochs 4
ft G --loss psnr --lr 5e-5 --augment flip,permute,intensity,affine --epochs 2
ft H --loss psnr --lr 5e-5 --augment flip,permute,intensity,affine,sharpness --epochs 4
