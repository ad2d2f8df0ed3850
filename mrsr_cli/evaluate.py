"""File-level evaluation behind ``mrsr evaluate``: grids checked, metrics per test image.

Example::

    rows = evaluate_files("ref.nii.gz", ["spline.nii.gz", "cnn.nii.gz"])
    write_csv("scores.csv", rows)
"""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path


from .errors import MrsrError
from .io import atomic_write, load_volume
from .metrics import compare, head_mask


def evaluate_files(reference, tests, mask=None) -> list[dict]:
    """PSNR/SSIM of each test image against ``reference`` inside ``mask`` (or a head mask)."""
    ref = load_volume(reference, what="reference")
    if mask is not None:
        mvol = load_volume(mask, what="mask")
        diff = ref.grid.describe_difference(mvol.grid)
        if diff:
            raise MrsrError(f"mask {mask} is not on the reference grid: {diff}")
        region = mvol.data > 0
        if not region.any():
            raise MrsrError(f"mask {mask} is empty")
    else:
        region = head_mask(ref.data)
    rows = []
    for test in tests:
        vol = load_volume(test, what="test image")
        diff = ref.grid.describe_difference(vol.grid)
        if diff:
            raise MrsrError(f"{test} is not on the reference grid ({diff}); resample it with 'mrsr upscale --like {reference}'")
        rows.append({"image": str(test), **compare(ref.data, vol.data, region)})
    return rows


def write_csv(path, rows: list[dict]) -> None:
    """Write the rows as CSV atomically."""
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(path), lambda tmp: tmp.write_text(buffer.getvalue()))
