"""PNG preview of three orthogonal slices through the volume centre: input (top) vs output.

Slices are taken on the output grid (the input is shown nearest-neighbour on that grid) and
displayed in radiological-agnostic voxel order, with the superior/anterior side up.  The PNG
writer is a few lines of zlib; no imaging library is needed.

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


def _slices(volume: np.ndarray) -> list[np.ndarray]:
    c = [n // 2 for n in volume.shape]
    # (j, k) sagittal, (i, k) coronal, (i, j) axial; transpose + flip so the 2nd axis points up
    return [np.flipud(volume[c[0], :, :].T), np.flipud(volume[:, c[1], :].T), np.flipud(volume[:, :, c[2]].T)]


def _row(volume: np.ndarray, vmax: float) -> np.ndarray:
    panels = _slices(volume)
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 4))) for p in panels]
    return np.clip(np.concatenate(padded, axis=1) / vmax * 255.0, 0, 255).astype(np.uint8)


def write_preview(path, source, output: np.ndarray, target) -> Path:
    """Write ``path``: top row = input on the output grid (nearest), bottom row = output."""
    from mrsr_cli.data.interpolate import make_resampler

    nearest = make_resampler(source.data, source.grid, target, order=0).full()
    positive = output[output > 0]
    vmax = float(np.percentile(positive, 99.5)) if positive.size else 1.0
    top, bottom = _row(nearest, vmax), _row(output, vmax)
    image = np.concatenate([top, np.zeros((4, top.shape[1]), np.uint8), bottom], axis=0)
    path = Path(path)
    atomic_write(path, lambda tmp: tmp.write_bytes(png_bytes(image)))
    return path
