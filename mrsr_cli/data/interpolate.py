"""B-spline resampling of a volume onto any target grid: the S↑ operator of Pham eq. 4.

Two paths, chosen by :func:`make_resampler`:

* **Separable** (target voxel axes parallel to the source's, the case of every factor or
  voxel-size resize): one sparse matrix per axis, ``W_a[j, i]`` = weight of source sample
  ``i`` for target coordinate ``j`` (B-spline of order ``order`` with its interpolating
  prefilter, boundary mode ``reflect`` = half-sample symmetric, i.e. mirrored at the FOV edge).
  Any box of the output is ``W_0[r0] ×₀ W_1[r1] ×₁ W_2[r2] ×₂ volume`` — no coordinate
  arrays at all, so memory is the output box plus one intermediate.
* **General** (oblique or permuted target, ``--like`` on another orientation): spline
  prefilter once, then ``scipy.ndimage.map_coordinates`` slab by slab along the target's first
  axis, so coordinate arrays never exceed ~32 M values.

Target points more than half a voxel outside the source FOV are 0 (outside the image).

Example::

    src = Grid(lr.shape, lr_affine)
    dst = upscaled_grid(src, (2, 2, 2))
    sr = resample(lr, src, dst, order=3)          # float32 on dst
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse

from mrsr_cli.data.geometry import Grid, axis_aligned_mapping, bounding_box, voxel_mapping

SLAB_VALUES = 32 * 1024 * 1024  # target voxels per slab on the general path
WEIGHT_CUTOFF = 1e-7  # relative; the spline prefilter is IIR, its tail below this is dropped


def axis_weights(n_in: int, coords: np.ndarray, order: int) -> sparse.csr_matrix:
    """Sparse (len(coords) × n_in) B-spline interpolation matrix for 1-D source positions.

    ``coords`` are in source voxel units (voxel centres at integers).  Rows of coordinates
    beyond the FOV (``< -0.5`` or ``> n_in - 0.5``) are zero.
    """
    coords = np.asarray(coords, dtype=np.float64)
    dense = np.empty((coords.size, n_in), dtype=np.float64)
    unit = np.zeros(n_in, dtype=np.float64)
    for i in range(n_in):
        unit[i] = 1.0
        dense[:, i] = ndimage.map_coordinates(unit, coords[None, :], order=order, mode="reflect")
        unit[i] = 0.0
    outside = (coords < -0.5 - 1e-6) | (coords > n_in - 0.5 + 1e-6)
    dense[outside] = 0.0
    dense[np.abs(dense) < WEIGHT_CUTOFF] = 0.0
    return sparse.csr_matrix(dense.astype(np.float32))


def _apply_axis(block: np.ndarray, weights: sparse.csr_matrix, axis: int) -> np.ndarray:
    moved = np.moveaxis(block, axis, 0)
    rest = moved.shape[1:]
    flat = np.ascontiguousarray(moved).reshape(moved.shape[0], -1)
    out = np.asarray(weights @ flat, dtype=np.float32).reshape((weights.shape[0],) + rest)
    return np.moveaxis(out, 0, axis)


class SeparableResampler:
    """Lazily evaluates the resampled volume on any box of the target grid.

    ``scale``/``offset`` map target voxel indices to source voxel indices per axis (source =
    offset + scale · target); ``weights`` (optional) are the per-axis matrices of
    :func:`axis_weights` when the caller already has them (one set serves many volumes).

    >>> lr = np.arange(32 ** 3, dtype=np.float32).reshape(32, 32, 32)
    >>> r = SeparableResampler(lr, scale=(0.5,)*3, offset=(-0.25,)*3, shape=(64, 64, 64))
    >>> r.read((slice(0, 16), slice(0, 64), slice(8, 24))).shape
    (16, 64, 16)
    """

    def __init__(self, volume: np.ndarray, scale, offset, shape, order: int = 3, weights=None):
        self.volume = np.asarray(volume, dtype=np.float32)
        self.shape = tuple(int(n) for n in shape)
        self.weights = weights or [
            axis_weights(self.volume.shape[a], offset[a] + scale[a] * np.arange(self.shape[a]), order)
            for a in range(3)
        ]
        # Contract the most-shrinking axis first: keeps the intermediate small.
        self.axis_order = sorted(range(3), key=lambda a: self.shape[a] / self.volume.shape[a])

    def read(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """Float32 values of the target grid on ``box`` (slices may reach beyond it: zeros)."""
        starts = [s.start for s in box]
        stops = [s.stop for s in box]
        block = self.volume
        for a in self.axis_order:
            rows = np.arange(starts[a], stops[a])
            inside = (rows >= 0) & (rows < self.shape[a])
            w = self.weights[a][rows[inside]]
            if not inside.all():  # pad rows beyond the target grid with zeros
                full = sparse.lil_matrix((rows.size, w.shape[1]), dtype=np.float32)
                full[np.flatnonzero(inside)] = w
                w = full.tocsr()
            block = _apply_axis(block, w, a)
        return block

    def nonzero_box(self, tolerance: float = 0.0) -> tuple[slice, ...]:
        """The smallest box of the target grid outside which the resampled volume is 0: the target
        rows whose weights on the source's non-zero bounding box exceed ``tolerance``, per axis.
        With ``tolerance`` 0 the values outside are exactly 0 (weights below ``WEIGHT_CUTOFF`` are
        dropped); otherwise at most about ``2·tolerance·max|volume|`` (the spline prefilter's tail
        decays by 0.268 per source voxel, so its sum is under 1.4× its first term, and a row's
        weights on the other axes sum to under 1.3 in absolute value).  An all-zero volume gives
        an empty box."""
        source_box = bounding_box(self.volume != 0)
        box = []
        for a in range(3):
            if source_box[a].stop <= source_box[a].start:
                return (slice(0, 0),) * 3
            weights = abs(self.weights[a][:, source_box[a]])
            rows = np.flatnonzero(weights.max(axis=1).toarray().ravel() > tolerance)
            if rows.size == 0:
                return (slice(0, 0),) * 3
            box.append(slice(int(rows[0]), int(rows[-1]) + 1))
        return tuple(box)

    def full(self, out: np.ndarray | None = None, slab: int = 16) -> np.ndarray:
        """The whole target volume, built slab by slab along axis 0 into ``out``."""
        if out is None:
            out = np.empty(self.shape, dtype=np.float32)
        first = self.axis_order[0]
        if first == 0:  # cheap: contract axis 0 per slab directly
            for start in range(0, self.shape[0], slab):
                stop = min(start + slab, self.shape[0])
                out[start:stop] = self.read((slice(start, stop), slice(0, self.shape[1]), slice(0, self.shape[2])))
            return out
        out[...] = self.read(tuple(slice(0, n) for n in self.shape))
        return out


class GeneralResampler:
    """Resampling through an arbitrary affine voxel mapping, slab by slab."""

    def __init__(self, volume: np.ndarray, mapping: np.ndarray, shape, order: int = 3):
        self.order = order
        self.mapping = mapping
        self.shape = tuple(int(n) for n in shape)
        self.source_shape = volume.shape
        volume = np.asarray(volume, dtype=np.float32)
        self.coeffs = ndimage.spline_filter(volume, order=order, mode="reflect", output=np.float32) if order > 1 else volume

    def read(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        shape = tuple(s.stop - s.start for s in box)
        out = np.zeros(shape, dtype=np.float32)
        per_plane = shape[1] * shape[2]
        step = max(1, SLAB_VALUES // max(per_plane, 1))
        j = np.arange(box[1].start, box[1].stop, dtype=np.float64)
        k = np.arange(box[2].start, box[2].stop, dtype=np.float64)
        for start in range(0, shape[0], step):
            i = np.arange(box[0].start + start, box[0].start + min(start + step, shape[0]), dtype=np.float64)
            ii, jj, kk = np.meshgrid(i, j, k, indexing="ij")
            pts = np.stack([ii.ravel(), jj.ravel(), kk.ravel()])
            del ii, jj, kk
            src = self.mapping[:3, :3] @ pts + self.mapping[:3, 3:4]
            values = ndimage.map_coordinates(self.coeffs, src, order=self.order, mode="reflect", prefilter=False, output=np.float32)
            n = np.asarray(self.source_shape)[:, None]
            outside = ((src < -0.5 - 1e-6) | (src > n - 0.5 + 1e-6)).any(axis=0)
            in_target = np.ones(pts.shape[1], dtype=bool)
            for a, idx in enumerate(pts):
                in_target &= (idx >= 0) & (idx < self.shape[a])
            values[outside | ~in_target] = 0.0
            out[start : start + i.size] = values.reshape(i.size, shape[1], shape[2])
        return out

    def full(self, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty(self.shape, dtype=np.float32)
        out[...] = self.read(tuple(slice(0, n) for n in self.shape))
        return out


def make_resampler(volume: np.ndarray, source: Grid, target: Grid, order: int = 3):
    """Pick the separable resampler when the grids are axis-aligned, else the general one."""
    if not 0 <= order <= 5:
        raise ValueError("spline order must be 0..5")
    mapping = voxel_mapping(source, target)
    aligned = axis_aligned_mapping(mapping)
    if aligned is not None:
        scale, offset = aligned
        return SeparableResampler(volume, scale, offset, target.shape, order)
    return GeneralResampler(volume, mapping, target.shape, order)


def resample(volume: np.ndarray, source: Grid, target: Grid, order: int = 3) -> np.ndarray:
    """``volume`` (on ``source``) spline-interpolated onto ``target``; float32."""
    return make_resampler(volume, source, target, order).full()
