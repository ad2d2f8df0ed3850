#!/usr/bin/env python3
"""Round 33 §11: zero-filling (the band-limited interpolation) against cubic spline on Colin27
truncated in k-space ×2, with and without 2 % noise; PSNR in the head mask.

Usage: python benchmarks/experiments/33-blind/zerofill.py
"""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import mrsr_cli  # noqa: E402
from mrsr_cli.data.geometry import Grid  # noqa: E402
from mrsr_cli.degrade.kspace import KSpaceModel  # noqa: E402
from mrsr_cli.evaluation.metrics import head_mask, psnr  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    img = nib.load(str(ROOT / ".data" / "colin27_ch2.nii.gz"))
    hr = nib.Nifti1Image(np.clip(np.asarray(img.dataobj, dtype=np.float32), 0, None), img.affine)
    truth = hr.get_fdata(dtype=np.float32)
    mask = head_mask(truth)
    for noise in (0.0, 0.02):
        lr = mrsr_cli.simulate(hr, factor=2, acquisition="kspace", noise=noise, seed=0)
        spline = mrsr_cli.upscale(lr, like=hr, method="spline").get_fdata(dtype=np.float32)
        operator = KSpaceModel(Grid(hr.shape, hr.affine), Grid(lr.shape, lr.affine))
        # the adjoint zero-fills; its gain on a constant is the scale to undo
        gain = float(np.real(operator.adjoint(np.ones(lr.shape, np.float32))).mean())
        zero_filled = (np.real(operator.adjoint(lr.get_fdata(dtype=np.float32))) / gain).astype(np.float32)
        print(f"noise {noise:g}: spline {psnr(truth, spline, mask):.2f} dB, zero-filled {psnr(truth, zero_filled, mask):.2f} dB")


if __name__ == "__main__":
    main()
