"""Write a copy of a validation volume with the `detail` augmentation's random thin sheets added
(mrsr_cli.training.augment.add_fine_detail, fixed seed): a validation image with fine structure that its LR
version loses and a reference made from it shows, which the smooth templates lack.

    python benchmarks/experiments/add_fine_detail.py IN.nii.gz OUT.nii.gz [--seed 5]

Used by benchmarks/experiments/09-guided-detail/run.sh on the validation half of MNI152NLin6Asym only;
never on Colin27 (the held-out test).
"""
from __future__ import annotations

import argparse

import nibabel as nib
import numpy as np


def main() -> None:
    from mrsr_cli.models.channels import normalization_scale
    from mrsr_cli.training.augment import add_fine_detail

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    img = nib.load(args.input)
    data = np.asarray(img.dataobj, dtype=np.float32)
    scale = normalization_scale(data)
    detailed = add_fine_detail(data / scale, np.random.default_rng(args.seed))
    nib.save(nib.Nifti1Image((detailed * scale).astype(np.float32), img.affine, img.header), args.output)
    print(f"{args.output}: intensity changed by up to {np.abs(detailed - data / scale).max():.3f} of the 99.5th percentile")


if __name__ == "__main__":
    main()
