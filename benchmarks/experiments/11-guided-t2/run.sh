#!/usr/bin/env bash
# Round 11 (issue 21, item 3): guided super-resolution of a real T2 with a real T1 reference
# (Pham §5, Fig. 10).  SPM's avg152T2 and avg152T1 (co-registered ICBM152 averages, 2 mm;
# benchmarks/data.py) are split into hemispheres; both models train on the left T2 half with
# the same budget (6 epochs x 1600 patches of 25³, lr 5e-5, factors x2 and (2,2,3)):
#   G: the builtin `guided` fine-tuned with the left T1 half as its reference;
#   U: the builtin `default` fine-tuned unguided (the fair unguided baseline: it saw the same T2).
# score.py: the right T2 half at x2 and (2,2,3): spline, U, G with the right T1 half, G with wrong
# references (the T1 mirrored left-right, and uniform noise).  Bars (issue 21): G ≥ U + 1 dB,
# and a wrong reference never costs more than 0.5 dB against U.  About 25 min on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=.data/guided-t2; mkdir -p $OUT
.venv/bin/python - <<'PY'
import nibabel as nib, numpy as np
for c in ("t1", "t2"):
    img = nib.as_closest_canonical(nib.load(f".data/spm_avg152_{c}.nii"))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine), f".data/guided-t2/spm_{c}.nii.gz")
PY
for c in t1 t2; do [ -f $OUT/spm_${c}_left.nii.gz ] || .venv/bin/python benchmarks/split_hemispheres.py $OUT/spm_$c.nii.gz; done
COMMON=(--scales "2,2,2;2,2,3" --patch 25 --batch 16 --patches-per-epoch 1600 --epochs 6 --lr 5e-5
        --augment flip,permute,intensity --val-factor "2,2,2;2,2,3" --precision bf16 --threads 2 --seed 5 -q --force)
[ -f $OUT/G.safetensors ] || .venv/bin/mrsr train $OUT/spm_t2_left.nii.gz --reference $OUT/spm_t1_left.nii.gz \
    --init-from guided --val $OUT/spm_t2_right.nii.gz -o $OUT/G.safetensors "${COMMON[@]}"
[ -f $OUT/U.safetensors ] || .venv/bin/mrsr train $OUT/spm_t2_left.nii.gz --init-from default \
    --val $OUT/spm_t2_right.nii.gz -o $OUT/U.safetensors "${COMMON[@]}"
.venv/bin/python benchmarks/experiments/11-guided-t2/score.py
