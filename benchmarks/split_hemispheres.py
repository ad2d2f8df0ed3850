"""Split the ICBM152 2009a T1 into a left and a right hemisphere crop (world x < -4 mm, x > +4 mm).

A validation volume as sharp as a single-subject scan, without touching the test subject:
train on one hemisphere, validate on the other (docs/models.md, "Choosing the recipe").
MNI152NLin6Asym, the other template, is much smoother than a single scan (spline x2 PSNR
33.6 dB vs 28.1 dB on 2009a and 29.0 dB on Colin27), so on its own it rewards timid models.

    python benchmarks/split_hemispheres.py            # writes .data/icbm152_2009a_{t1,gm,wm}_{left,right}.nii.gz

The crops keep world coordinates: nibabel's slicer shifts the affine's translation, so a voxel
keeps its RAS+ position in mm.  The 8 mm gap keeps the two halves' patches apart.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

GAP_MM = 4.0


def split(path: Path) -> tuple[Path, Path]:
    image = nib.load(path)
    affine = image.affine
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))) or affine[0, 0] <= 0:
        raise SystemExit(f"{path}: expected an axis-aligned RAS+ grid")
    # world x of voxel column i: x = affine[0,0] * i + affine[0,3]
    x_mm = affine[0, 0] * np.arange(image.shape[0]) + affine[0, 3]
    left = np.nonzero(x_mm < -GAP_MM)[0]
    right = np.nonzero(x_mm > GAP_MM)[0]
    outputs = []
    for name, columns in (("left", left), ("right", right)):
        crop = image.slicer[columns[0] : columns[-1] + 1]
        out = path.with_name(path.name.replace(".nii.gz", f"_{name}.nii.gz"))
        nib.save(crop, out)
        print(f"{out}: {crop.shape}, x from {x_mm[columns[0]]:+.0f} to {x_mm[columns[-1]]:+.0f} mm")
        outputs.append(out)
    return outputs[0], outputs[1]


if __name__ == "__main__":
    # the T1 and its tissue maps share one grid, so their crops match voxel for voxel
    for name in sys.argv[1:] or [f".data/icbm152_2009a_{kind}.nii.gz" for kind in ("t1", "gm", "wm")]:
        split(Path(name))
