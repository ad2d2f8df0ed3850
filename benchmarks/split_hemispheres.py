"""Split a template into a left and a right hemisphere crop (world x < -4 mm, x > +4 mm).

    python benchmarks/split_hemispheres.py [IMAGE ...]   # default: .data/icbm152_2009a_{t1,gm,wm}.nii.gz
                                                         # writes IMAGE_left.nii.gz and IMAGE_right.nii.gz

Round 3 of the recipe (benchmarks/experiments/03-fullhead/run.sh) trains on the left half of MNI152NLin6Asym,
the only full-head training volume, and validates on its right half.  Round 2 split ICBM152 2009a
this way, but that template is the symmetric one: its right half is the mirror image of its
left, so with flip augmentation it is not held out at all (docs/benchmarks.md, round 2).

The crops keep world coordinates: nibabel's slicer shifts the affine's translation, so a voxel
keeps its RAS+ position in mm.  The 8 mm gap keeps the two halves' patches apart.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

GAP_MM = 4.0


def mirror_correlation(image) -> float:
    """Correlation between the image and its left-right mirror (world x -> -x) over the head:
    1.0 for a symmetric template such as ICBM152 2009a sym."""
    data = np.asarray(image.dataobj, dtype=np.float64)
    affine = image.affine
    x_mm = affine[0, 0] * np.arange(image.shape[0]) + affine[0, 3]
    mirror = np.round((-x_mm - affine[0, 3]) / affine[0, 0]).astype(int)
    ok = (mirror >= 0) & (mirror < image.shape[0])
    a, b = data[ok], data[mirror[ok]]
    head = (a > 0.1 * data.max()) | (b > 0.1 * data.max())
    return float(np.corrcoef(a[head], b[head])[0, 1])


def split(path: Path) -> tuple[Path, Path]:
    image = nib.load(path)
    affine = image.affine
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))) or affine[0, 0] <= 0:
        raise SystemExit(f"{path}: expected an axis-aligned RAS+ grid")
    # world x of voxel column i: x = affine[0,0] * i + affine[0,3]
    x_mm = affine[0, 0] * np.arange(image.shape[0]) + affine[0, 3]
    left = np.nonzero(x_mm < -GAP_MM)[0]
    right = np.nonzero(x_mm > GAP_MM)[0]
    print(f"{path}: left-right mirror correlation {mirror_correlation(image):.3f}")
    outputs = []
    for name, columns in (("left", left), ("right", right)):
        crop = image.slicer[columns[0] : columns[-1] + 1]
        out = path.with_name(path.name.replace(".nii.gz", f"_{name}.nii.gz"))
        nib.save(crop, out)
        print(f"{out}: {crop.shape}, x from {x_mm[columns[0]]:+.0f} to {x_mm[columns[-1]]:+.0f} mm")
        outputs.append(out)
    return outputs[0], outputs[1]


if __name__ == "__main__":
    # a T1 and its tissue maps or brain mask share one grid, so their crops match voxel for voxel
    for name in sys.argv[1:] or [f".data/icbm152_2009a_{kind}.nii.gz" for kind in ("t1", "gm", "wm")]:
        split(Path(name))
