"""Cartesian k-space truncation: a lower-resolution acquisition the way a scanner makes one.

An MRI scanner that acquires a 2 mm image of a field of view samples the central frequencies of
its k-space and nothing else; the image is the inverse Fourier transform of those, on the
coarser grid.  Along each voxel axis, with the HR line ``x`` of ``n`` voxels (periodic, as the
DFT is) and the ``m`` central frequencies kept (``|f| < m/2``; at even ``m`` the two halves of
the Nyquist frequency ``±m/2`` each get half its weight, so that the operator stays real)::

    y_k = (1/n) Σ_f w(f) Σ_j x_j cos(2π f (p_k − j) / n)

where ``p_k`` is the LR voxel centre ``k`` in HR voxel coordinates (the same field of view as
:func:`mrsr_cli.data.geometry.resized_grid`) and ``w`` an optional apodisation window over the
kept frequencies (:data:`WINDOWS`: none, Hann, Hamming, Tukey with α = 0.5).  A constant image
stays constant.  The operator is one real ``m × n`` matrix per axis, so its adjoint is exact
(the transposes).  Unlike the Gaussian PSF that ``mrsr simulate`` uses by default, it keeps
100 % of the contrast up to the LR Nyquist frequency (none with a window: the Hann window
tapers to 0 there).

>>> import numpy as np
>>> from mrsr_cli.data.geometry import Grid, scaled_grid
>>> hr = Grid((24, 24, 24), np.eye(4))
>>> A = KSpaceModel(hr, scaled_grid(hr, (2, 2, 3)), window="hann")
>>> x, y = np.random.default_rng(0).random((2, 24, 24, 24), dtype=np.float32)
>>> A.forward(x).shape
(12, 12, 8)
>>> lhs = float(np.vdot(A.forward(x), y[:12, :12, :8])); rhs = float(np.vdot(x, A.adjoint(y[:12, :12, :8])))
>>> abs(lhs - rhs) / abs(lhs) < 1e-5
True
"""

from __future__ import annotations

import numpy as np

from mrsr_cli.data.geometry import Grid, axis_aligned_mapping, voxel_mapping
from mrsr_cli.degrade.observation import apply_axis_matrices
from mrsr_cli.errors import MrsrError, UsageError

TUKEY_ALPHA = 0.5  # the tapered fraction of the Tukey window (0: none, 1: Hann)


def _tukey(u: np.ndarray) -> np.ndarray:
    edge = 1 - TUKEY_ALPHA
    taper = 0.5 * (1 + np.cos(np.pi * (np.abs(u) - edge) / TUKEY_ALPHA))
    return np.where(np.abs(u) <= edge, 1.0, taper)


# Apodisation windows over the kept frequencies, as functions of u = f / (m / 2) in [-1, 1].
WINDOWS = {
    "none": lambda u: np.ones_like(u),
    "hann": lambda u: 0.5 * (1 + np.cos(np.pi * u)),
    "hamming": lambda u: 0.54 + 0.46 * np.cos(np.pi * u),
    "tukey": _tukey,
}


def kspace_axis_matrix(n: int, m: int, centres: np.ndarray, window: str = "none") -> np.ndarray:
    """The ``m × n`` matrix of the truncation along one axis: row ``k`` gives LR sample ``k`` at HR
    coordinate ``centres[k]`` from the ``m`` central frequencies of the ``n``-point DFT."""
    if window not in WINDOWS:
        raise UsageError(f"--window must be one of {', '.join(WINDOWS)}, got {window!r}")
    half = m / 2
    freqs = np.arange(-int(np.floor(half)), int(np.floor(half)) + 1, dtype=np.float64)
    weights = WINDOWS[window](freqs / half) if m > 1 else np.ones(1)
    if m % 2 == 0:  # the Nyquist frequency ±m/2: half of it on each side keeps the operator real
        weights = np.where(np.abs(freqs) == half, 0.5 * weights, weights)
    # cos(a − b) = cos a cos b + sin a sin b: two (m × K)(K × n) products instead of an m × n × K array
    at_lr = 2 * np.pi * np.outer(centres, freqs) / n
    at_hr = 2 * np.pi * np.outer(np.arange(n, dtype=np.float64), freqs) / n
    matrix = (np.cos(at_lr) * weights) @ np.cos(at_hr).T + (np.sin(at_lr) * weights) @ np.sin(at_hr).T
    return (matrix / n).astype(np.float32)


class KSpaceModel:
    """``A``: the k-space truncation from ``hr_grid`` to ``lr_grid`` (same field of view, voxel axes
    parallel), with apodisation ``window``; ``forward``, ``adjoint`` and ``axis_matrices`` as
    :class:`mrsr_cli.degrade.observation.ObservationModel` has them."""

    def __init__(self, hr_grid: Grid, lr_grid: Grid, window: str = "none"):
        mapping = axis_aligned_mapping(voxel_mapping(hr_grid, lr_grid))
        if mapping is None:
            raise MrsrError("k-space truncation needs an LR grid whose voxel axes are parallel to the HR grid's")
        scale, offset = mapping
        self.hr_grid, self.lr_grid, self.window = hr_grid, lr_grid, window
        self._matrices = [kspace_axis_matrix(n, m, offset[a] + scale[a] * np.arange(m), window)
                          for a, (n, m) in enumerate(zip(hr_grid.shape, lr_grid.shape))]

    def axis_matrices(self) -> list[np.ndarray]:
        return self._matrices

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` on the LR grid (real; ``simulate`` writes its magnitude, as a scanner does)."""
        return apply_axis_matrices(x, self._matrices)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``Aᵀ y`` on the HR grid."""
        return apply_axis_matrices(y, self._matrices, transpose=True)
