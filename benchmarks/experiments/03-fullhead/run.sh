#!/usr/bin/env bash
# Third round of the recipe choice (docs/models.md, "How the default model was trained"):
# ICBM152 2009a (nilearn) is skull-stripped, so a model trained on it alone never sees scalp,
# skull or background, which make up most of a head scan and of its error.  Run M fine-tunes
# stage 1 of the default on 2009a AND the left half of MNI152NLin6Asym (a full head; x < -4 mm)
# with the default's stage-2 recipe, and validates on the right half of MNI152NLin6Asym
# (x > +4 mm; that template is not left-right symmetric, unlike 2009a).  Colin27 plays no part.
# Then benchmarks/region_gain.py splits the x2 gain on the right half into brain and the rest
# of the head, for the previous default (trained on 2009a only) and for M.  Run N (not shipped)
# also pre-trains stage 1 on both volumes.  About 45 min on 2 CPU cores.
# Logs: .data/fullhead/; `python benchmarks/experiments/report.py` writes the tables.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/fullhead; mkdir -p $OUT
.venv/bin/python benchmarks/split_hemispheres.py .data/mni152nlin6asym_t1_1mm.nii.gz .data/mni152nlin6asym_brainmask_1mm.nii.gz
LEFT=.data/mni152nlin6asym_t1_1mm_left.nii.gz; RIGHT=.data/mni152nlin6asym_t1_1mm_right.nii.gz
STAGE1=.data/models/recnn-x2-stage1.safetensors
PREVIOUS=.data/models/default-2009a-only.safetensors  # the default before round 3, from git history
[ -f $PREVIOUS ] || git show 2ada145:share/models/mrsr-recnn-t1w.safetensors > $PREVIOUS
VF="2,2,2;2,2,3;3,3,3;1,1,4"
for m in $PREVIOUS $STAGE1; do .venv/bin/python benchmarks/validate_model.py $m $RIGHT --val-factor "$VF"; done > $OUT/baselines.jsonl
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/M.safetensors --val $RIGHT --init-from $STAGE1 \
  --patch 25 --batch 16 --scales "2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;2,2.5,2" --patches-per-epoch 1600 --epochs 6 \
  --lr 5e-5 --loss psnr --augment flip,permute,intensity,affine,sharpness --val-factor "$VF" \
  --seed 2 --threads 2 --force -q --log $OUT/M.log.jsonl
.venv/bin/python benchmarks/region_gain.py $RIGHT .data/mni152nlin6asym_brainmask_1mm_right.nii.gz $PREVIOUS $OUT/M.safetensors \
  --factor 2 > $OUT/regions.jsonl
# the same split for round 2's model L on the whole MNI152NLin6Asym (needs benchmarks/experiments/02-sharpval/run.sh's output)
if [ -f .data/sharpval/L.safetensors ]; then
  .venv/bin/python benchmarks/region_gain.py .data/mni152nlin6asym_t1_1mm.nii.gz .data/mni152nlin6asym_brainmask_1mm.nii.gz \
    $PREVIOUS .data/sharpval/L.safetensors --factor 2 > $OUT/regions-round2.jsonl
fi
# run N (not shipped): stage 1 on the same two volumes too, then M's stage 2 from it
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/S1both.safetensors --blind --loss mse --layers 10 --filters 32 \
  --scales 2,2,2 --patches-per-epoch 1600 --epochs 50 --max-minutes 12 --val $RIGHT --val-factor 2 --seed 1 --threads 2 --force -q \
  --log $OUT/S1both.log.jsonl
.venv/bin/mrsr train .data/icbm152_2009a_t1.nii.gz $LEFT -o $OUT/N.safetensors --val $RIGHT --init-from $OUT/S1both.safetensors \
  --patch 25 --batch 16 --scales "2,2,2;2,2,2;2,2,3;3,3,3;1,1,4;1,1,4;2,2.5,2" --patches-per-epoch 1600 --epochs 6 \
  --lr 5e-5 --loss psnr --augment flip,permute,intensity,affine,sharpness --val-factor "$VF" \
  --seed 2 --threads 2 --force -q --log $OUT/N.log.jsonl
