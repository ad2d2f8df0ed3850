"""Voxel grids and the field-of-view-preserving resize convention.

Conventions (see docs/geometry.md):

* A :class:`Grid` is a 3-D ``shape`` (voxels) and a 4x4 voxel-to-world ``affine`` (mm,
  RAS+ world as nibabel reports it).  Voxel *centres* sit at integer voxel indices, so voxel
  ``i`` covers ``[i - 0.5, i + 0.5]`` along each axis and the field of view (FOV) of an axis
  with ``n`` voxels is ``[-0.5, n - 0.5]`` in voxel units.
* Resizing keeps the FOV centre fixed.  With ``s = v_new / v_old`` (new voxel size over old,
  per axis) the new grid has ``n_new = max(1, round(n * v_old / v_new))`` voxels and new voxel
  ``j`` sits at old voxel coordinate ``(n - 1) / 2 + (j - (n_new - 1) / 2) * s``.  When ``n`` is
  divisible this reduces to the two rules the CLI documents:

  - ``simulate`` by ``F``:  ``A_lr = A_hr · [diag(F), (F - 1) / 2]``
  - ``upscale``  by ``F``:  ``A_sr = A_lr · [diag(1/F), (1/F - 1) / 2]``

  so ``simulate`` then ``upscale`` with the same ``F`` lands exactly on the original grid.
* The resize is done in voxel space, so oblique and flipped (radiological) affines keep their
  orientation; only the column lengths (voxel sizes) change.

Example::

    >>> import numpy as np
    >>> hr = Grid((182, 218, 182), np.diag([1.0, 1.0, 1.0, 1.0]))
    >>> lr = scaled_grid(hr, (2, 2, 2))          # LR voxel = 2 x HR voxel
    >>> lr.shape, lr.voxel_size
    ((91, 109, 91), (2.0, 2.0, 2.0))
    >>> np.allclose(scaled_grid(lr, (0.5, 0.5, 0.5)).affine, hr.affine)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrsr_cli.errors import UsageError

MAX_FACTOR = 16.0


@dataclass(frozen=True)
class Grid:
    """A voxel grid: ``shape`` in voxels and a 4x4 voxel→world ``affine`` in mm."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "affine", np.asarray(self.affine, dtype=np.float64))
        if len(self.shape) != 3 or self.affine.shape != (4, 4):
            raise ValueError("Grid needs a 3-D shape and a 4x4 affine")

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel edge lengths in mm (norms of the affine's columns)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))

    def same_as(self, other: "Grid", atol: float = 1e-4) -> bool:
        """True when both grids have the same shape and affine (to ``atol`` mm)."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol))

    def describe_difference(self, other: "Grid") -> str:
        """One line saying how two grids differ ('' when they match)."""
        if self.same_as(other):
            return ""
        parts = []
        if self.shape != other.shape:
            parts.append(f"shape {self.shape} vs {other.shape}")
        vs_a, vs_b = np.round(self.voxel_size, 4), np.round(other.voxel_size, 4)
        if not np.allclose(vs_a, vs_b, atol=1e-4):
            parts.append(f"voxel size {tuple(vs_a)} vs {tuple(vs_b)} mm")
        shift = float(np.abs(self.affine[:3, 3] - other.affine[:3, 3]).max())
        if shift > 1e-4:
            parts.append(f"origin differs by up to {shift:.3g} mm")
        if not parts:
            parts.append("orientation (affine rotation) differs")
        return "; ".join(parts)


def parse_triplet(text: str | float | int | tuple | list, what: str) -> tuple[float, float, float]:
    """Parse ``"2"``, ``"2,2,3"`` or a sequence into three floats (one value means isotropic).

    >>> parse_triplet("2,2.5,2", "factor")
    (2.0, 2.5, 2.0)
    """
    if isinstance(text, (int, float)):
        values = [float(text)]
    elif isinstance(text, (tuple, list)):
        values = [float(v) for v in text]
    else:
        raw = [p for p in str(text).replace("x", ",").split(",")]
        try:
            values = [float(p) for p in raw]
        except ValueError:
            raise UsageError(f"{what} must be one number or three comma-separated numbers, got {text!r}") from None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise UsageError(f"{what} needs 1 or 3 values, got {len(values)} ({text!r})")
    if not all(np.isfinite(values)):
        raise UsageError(f"{what} must be finite, got {text!r}")
    return tuple(values)  # type: ignore[return-value]


def parse_factor(text, what: str = "--factor") -> tuple[float, float, float]:
    """Parse and validate a scale factor: each value in [1/16, 16]."""
    factor = parse_triplet(text, what)
    for f in factor:
        if f <= 0:
            raise UsageError(f"{what} values must be > 0, got {text!r}")
        if f > MAX_FACTOR or f < 1 / MAX_FACTOR:
            raise UsageError(f"{what} value {f:g} is absurd (outside [1/{MAX_FACTOR:g}, {MAX_FACTOR:g}])")
    return factor


def parse_voxel_size(text, what: str = "--voxel-size") -> tuple[float, float, float]:
    """Parse and validate a voxel size in mm: each value in (0, 100]."""
    size = parse_triplet(text, what)
    if any(v <= 0 or v > 100 for v in size):
        raise UsageError(f"{what} values must be in (0, 100] mm, got {text!r}")
    return size


def resized_grid(grid: Grid, voxel_size: tuple[float, float, float]) -> Grid:
    """The FOV-preserving grid with the requested voxel size (mm) per axis.

    ``n_new = max(1, round(n * v_old / v_new))`` voxels, centred on the old FOV.  Voxel sizes
    are kept exactly as requested, so when ``n * v_old / v_new`` is not an integer the new FOV
    is slightly larger or smaller than the old one, symmetrically about its centre.
    """
    old = np.asarray(grid.voxel_size)
    new = np.asarray(voxel_size, dtype=np.float64)
    step = new / old  # new voxel size in old voxel units
    n_old = np.asarray(grid.shape, dtype=np.float64)
    n_new = np.maximum(1, np.round(n_old * old / new - 1e-9)).astype(int)
    offset = (n_old - 1) / 2 - (n_new - 1) / 2 * step
    voxel_map = np.eye(4)
    voxel_map[:3, :3] = np.diag(step)
    voxel_map[:3, 3] = offset
    return Grid(tuple(n_new), grid.affine @ voxel_map)


def scaled_grid(grid: Grid, factor: tuple[float, float, float]) -> Grid:
    """Grid whose voxels are ``factor`` times larger (``factor > 1`` = lower resolution)."""
    return resized_grid(grid, tuple(v * f for v, f in zip(grid.voxel_size, factor)))


def upscaled_grid(grid: Grid, factor: tuple[float, float, float]) -> Grid:
    """Grid whose voxels are ``factor`` times smaller: the super-resolution target grid."""
    return resized_grid(grid, tuple(v / f for v, f in zip(grid.voxel_size, factor)))


def voxel_mapping(source: Grid, target: Grid) -> np.ndarray:
    """4x4 matrix mapping target voxel indices to source voxel indices."""
    return np.linalg.solve(source.affine, target.affine)


def axis_aligned_mapping(mapping: np.ndarray, atol: float = 1e-6) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scale, offset)`` when ``mapping`` is diagonal (separable per axis), else ``None``."""
    linear = mapping[:3, :3]
    if np.abs(linear - np.diag(np.diag(linear))).max() > atol * max(1.0, np.abs(linear).max()):
        return None
    return np.diag(linear).copy(), mapping[:3, 3].copy()


def scale_factor(source: Grid, target: Grid) -> np.ndarray:
    """Upscaling factor from ``source`` (LR) voxels to ``target`` voxels, per target array axis.

    ``factor[j] = 1 / ||M e_j||`` with ``M`` = :func:`voxel_mapping` (target → source indices):
    one target voxel step along axis j spans ``1/factor[j]`` source voxels.  For axis-aligned
    grids this is simply LR voxel size / target voxel size (mm / mm); values below 1 (a coarser
    target) are clipped to 1.  Example: a 1×1×4 mm LR image upscaled onto a 1 mm grid gives
    ``[1, 1, 4]``.
    """
    steps = np.linalg.norm(voxel_mapping(source, target)[:3, :3], axis=0)
    return np.maximum(1.0 / steps, 1.0)


def bounding_box(inside: np.ndarray) -> tuple[slice, ...]:
    """The smallest box (voxel slices) holding every ``True`` voxel of ``inside``; empty slices if none.

    >>> bounding_box(np.pad(np.ones((2, 3, 1), bool), 1))
    (slice(1, 3, None), slice(1, 4, None), slice(1, 2, None))
    """
    box = []
    for a in range(inside.ndim):
        hit = np.flatnonzero(inside.any(axis=tuple(b for b in range(inside.ndim) if b != a)))
        if hit.size == 0:
            return (slice(0, 0),) * inside.ndim
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def pad_to(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` zero-padded at the far faces of its last three axes to ``size`` voxels each (a patch cut
    where the image is smaller than it, or ends); ``a`` itself when nothing is missing.

    >>> pad_to(np.ones((2, 3, 4, 5)), 5).shape
    (2, 5, 5, 5)
    """
    pads = [(0, 0)] * (a.ndim - 3) + [(0, max(0, size - n)) for n in a.shape[-3:]]
    return np.pad(a, pads) if any(p[1] for p in pads) else a
