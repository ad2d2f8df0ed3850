"""PNG preview of three orthogonal slices through the volume centre: input (top) vs output.

Slices are taken on the output grid (the input is shown nearest-neighbour on that grid), turned
to the RAS axes nearest the grid's (so an image stored RAS and its copy stored LPS give the same
picture) and shown in neurological convention: sagittal with posterior left, coronal and axial
with the subject's left on the left, superior (axial: anterior) up.  Each row has a title
(INPUT, OUTPUT) and each panel its side letters (L/R, P/A).  The PNG writer is a few lines of
zlib and the letters a 5×7 bitmap font; no imaging library is needed.

Example::

    write_preview("sr.png", lr_volume, sr_data, target_grid)
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from mrsr_cli.data.io import atomic_write


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a 2-D uint8 array as a grayscale PNG."""
    h, w = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


# 5×7 bitmaps of the letters the preview writes.
_FONT = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "#####"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "N": ("#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
}
_BAND = 11  # pixel rows of a title band: 7-pixel letters with 2 pixels above and below


def _text(image: np.ndarray, row: int, col: int, text: str) -> None:
    """Draw ``text`` in white with its top-left corner at (row, col), clipped to the image."""
    for n, char in enumerate(text):
        glyph = np.array([[c == "#" for c in line] for line in _FONT[char]])
        r0, c0 = row, col + 6 * n
        h, w = min(7, image.shape[0] - r0), min(5, image.shape[1] - c0)
        if h > 0 and w > 0:
            image[r0:r0 + h, c0:c0 + w][glyph[:h, :w]] = 255


def to_ras(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``volume`` with its voxel axes permuted and flipped to the RAS axes nearest its affine's."""
    import nibabel as nib

    current = nib.orientations.io_orientation(affine)
    ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
    return nib.orientations.apply_orientation(volume, nib.orientations.ornt_transform(current, ras))


def _slices(volume: np.ndarray) -> list[np.ndarray]:
    """Sagittal (y, z), coronal (x, z), axial (x, y) through the centre of a RAS volume, the second axis up."""
    c = [n // 2 for n in volume.shape]
    return [np.flipud(volume[c[0], :, :].T), np.flipud(volume[:, c[1], :].T), np.flipud(volume[:, :, c[2]].T)]


_SIDES = (("P", "A"), ("L", "R"), ("L", "R"))  # the letters at the left and right edge of each panel


def _row(volume: np.ndarray, vmax: float, title: str) -> np.ndarray:
    """The three panels side by side under a title band; each panel's side letters at mid-height of its edges."""
    panels = _slices(volume)
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 4))) for p in panels]
    pixels = np.clip(np.concatenate(padded, axis=1) / vmax * 255.0, 0, 255).astype(np.uint8)
    col = 0
    for panel, (left, right) in zip(panels, _SIDES):
        if panel.shape[1] >= 16 and height >= 9:
            _text(pixels, height // 2 - 3, col + 1, left)
            _text(pixels, height // 2 - 3, col + panel.shape[1] - 6, right)
        col += panel.shape[1] + 4
    band = np.zeros((_BAND, pixels.shape[1]), np.uint8)
    _text(band, 2, 2, title)
    return np.concatenate([band, pixels], axis=0)


def write_preview(path, source, output: np.ndarray, target) -> Path:
    """Write ``path``: top row = input on the output grid (nearest), bottom row = output."""
    from mrsr_cli.data.interpolate import make_resampler

    nearest = to_ras(make_resampler(source.data, source.grid, target, order=0).full(), target.affine)
    output = to_ras(output, target.affine)
    positive = output[output > 0]
    vmax = float(np.percentile(positive, 99.5)) if positive.size else 1.0
    top, bottom = _row(nearest, vmax, "INPUT"), _row(output, vmax, "OUTPUT")
    image = np.concatenate([top, np.zeros((4, top.shape[1]), np.uint8), bottom], axis=0)
    path = Path(path)
    atomic_write(path, lambda tmp: tmp.write_bytes(png_bytes(image)))
    return path
