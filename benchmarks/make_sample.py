#!/usr/bin/env python3
"""Build the bundled demo scan share/data/sample_T1w_2mm.nii.gz (rerunnable, deterministic).

Source: Colin27 ``ch2.nii.gz`` (Debian mricron-data; see share/data/README.md), simulated at
2 mm isotropic with mrsr's own observation model (Gaussian PSF, FWHM = 2 mm), then stored as
int16 (values 0-255, rounding error <= 0.5) to keep the file small.
Usage: python benchmarks/data.py && python benchmarks/make_sample.py
"""

from pathlib import Path

import nibabel as nib
import numpy as np

from mrsr_cli.data.io import load_volume
from mrsr_cli.degrade.simulate import simulate_lowres

ROOT = Path(__file__).resolve().parent.parent
src = load_volume(ROOT / ".data" / "colin27_ch2.nii.gz")
lr, grid, _ = simulate_lowres(src.data, src.grid, factor=(2, 2, 2))
img = nib.Nifti1Image(np.round(lr).astype(np.int16), grid.affine)
img.header.set_qform(grid.affine, code=4)
img.header.set_sform(grid.affine, code=4)
img.header.set_xyzt_units("mm", "sec")
out = ROOT / "share" / "data" / "sample_T1w_2mm.nii.gz"
nib.save(img, str(out))
print(out, img.shape, out.stat().st_size, "bytes")
