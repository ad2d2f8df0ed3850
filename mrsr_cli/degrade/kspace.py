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
from mrsr_cli.degrade.observation import GridPair, apply_axis_matrices
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


def equivalent_gaussian_fwhm(window: str) -> float:
    """The FWHM, in LR voxels, of the Gaussian PSF whose modulation transfer equals ``window``'s at
    half the LR Nyquist frequency (0.25 cycles per LR voxel): how a model's PSF channels
    (:func:`mrsr_cli.models.channels.psf_encoding`) and the PSF estimator describe a k-space
    truncation.  No window, or Tukey's (flat there), is 0: no blur below the Nyquist frequency.

    >>> [round(equivalent_gaussian_fwhm(w), 2) for w in ("none", "tukey", "hamming", "hann")]
    [0.0, 0.0, 1.66, 1.77]
    """
    transfer = float(WINDOWS[window](np.array(0.5)))
    if transfer >= 1.0:
        return 0.0
    return float(np.sqrt(4.0 * np.log(2.0) * -np.log(transfer)) / (np.pi * 0.25))


def kspace_axis_matrix(n: int, m: int, centres: np.ndarray, window: str = "none", partial_fourier: float = 1.0,
                       part: str = "real") -> np.ndarray:
    """The ``m × n`` matrix of the truncation along one axis: row ``k`` gives LR sample ``k`` at HR
    coordinate ``centres[k]`` from the ``m`` central frequencies of the ``n``-point DFT.

    ``partial_fourier`` < 1 keeps only that fraction of them, from the most negative up (the
    rest zero-filled, as a scanner's partial-Fourier acquisition does): the result is complex,
    and ``part`` picks its ``real`` or ``imag`` matrix (symmetric truncation: imag is 0)."""
    if window not in WINDOWS:
        raise UsageError(f"--window must be one of {', '.join(WINDOWS)}, got {window!r}")
    half = m / 2
    freqs = np.arange(-int(np.floor(half)), int(np.floor(half)) + 1, dtype=np.float64)
    weights = WINDOWS[window](freqs / half) if m > 1 else np.ones(1)
    if m % 2 == 0:  # the Nyquist frequency ±m/2: half of it on each side keeps the operator real
        weights = np.where(np.abs(freqs) == half, 0.5 * weights, weights)
    if partial_fourier < 1.0:  # acquired: from -m/2 up to -m/2 + partial_fourier * m
        weights = np.where(freqs <= -half + partial_fourier * m + 1e-9, weights, 0.0)
    at_lr = 2 * np.pi * np.outer(centres, freqs) / n
    at_hr = 2 * np.pi * np.outer(np.arange(n, dtype=np.float64), freqs) / n
    # exp(i(a − b)) = cos(a − b) + i sin(a − b); cos(a − b) = cos a cos b + sin a sin b,
    # sin(a − b) = sin a cos b − cos a sin b: (m × K)(K × n) products, not an m × n × K array
    if part == "real":
        matrix = (np.cos(at_lr) * weights) @ np.cos(at_hr).T + (np.sin(at_lr) * weights) @ np.sin(at_hr).T
    else:
        matrix = (np.sin(at_lr) * weights) @ np.cos(at_hr).T - (np.cos(at_lr) * weights) @ np.sin(at_hr).T
    return (matrix / n).astype(np.float32)


PARTIAL_FOURIER_AXIS = 1  # the phase-encoding axis of partial-Fourier simulation: the second voxel axis
PARTIAL_FOURIER_RANGE = (0.5, 1.0)


class KSpaceModel(GridPair):
    """``A``: the k-space truncation from ``hr_grid`` to ``lr_grid`` (same field of view, voxel axes
    parallel), with apodisation ``window``; ``forward``, ``adjoint`` and ``axis_matrices`` as
    :class:`mrsr_cli.degrade.observation.ObservationModel` has them.  With ``partial_fourier`` < 1
    (along :data:`PARTIAL_FOURIER_AXIS`) ``A x`` is complex: ``forward`` returns it as complex64
    and ``adjoint`` the real part of ``Aᴴ y``, the adjoint for a real ``x``.

    >>> import numpy as np
    >>> from mrsr_cli.data.geometry import Grid, scaled_grid
    >>> hr = Grid((16, 16, 16), np.eye(4))
    >>> A = KSpaceModel(hr, scaled_grid(hr, (2, 2, 2)), partial_fourier=0.625)
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((16, 16, 16), dtype=np.float32)
    >>> y = (rng.random((8, 8, 8)) + 1j * rng.random((8, 8, 8))).astype(np.complex64)
    >>> lhs = float(np.real(np.vdot(y, A.forward(x)))); rhs = float(np.vdot(x, A.adjoint(y)))
    >>> A.forward(x).dtype, abs(lhs - rhs) / abs(lhs) < 1e-5
    (dtype('complex64'), True)
    """

    def __init__(self, hr_grid: Grid, lr_grid: Grid, window: str = "none", partial_fourier: float = 1.0):
        mapping = axis_aligned_mapping(voxel_mapping(hr_grid, lr_grid))
        if mapping is None:
            raise MrsrError("k-space truncation needs an LR grid whose voxel axes are parallel to the HR grid's")
        lo, hi = PARTIAL_FOURIER_RANGE
        if not lo <= partial_fourier <= hi:
            raise UsageError(f"--partial-fourier must be in [{lo:g}, {hi:g}], got {partial_fourier:g}")
        scale, offset = mapping
        self._scale, self._offset = scale, offset
        self.hr_grid, self.lr_grid, self.window, self.partial_fourier = hr_grid, lr_grid, window, float(partial_fourier)

        def axis_matrix(a: int, part: str) -> np.ndarray:
            n, m = hr_grid.shape[a], lr_grid.shape[a]
            fraction = self.partial_fourier if a == PARTIAL_FOURIER_AXIS else 1.0
            return kspace_axis_matrix(n, m, offset[a] + scale[a] * np.arange(m), window, fraction, part)

        self._matrices = [axis_matrix(a, "real") for a in range(3)]
        self._imaginary = None
        if self.partial_fourier < 1.0:
            self._imaginary = list(self._matrices)
            self._imaginary[PARTIAL_FOURIER_AXIS] = axis_matrix(PARTIAL_FOURIER_AXIS, "imag")

    def axis_matrices(self) -> list[np.ndarray]:
        """The real operator's matrices (a symmetric truncation; data consistency uses them)."""
        if self._imaginary is not None:
            raise MrsrError("a partial-Fourier truncation is complex: it has no real per-axis matrices")
        return self._matrices

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x`` on the LR grid: real float32, or complex64 with partial Fourier (``simulate``
        writes its magnitude, as a scanner does)."""
        real = apply_axis_matrices(x, self._matrices)
        if self._imaginary is None:
            return real
        return (real + 1j * apply_axis_matrices(x, self._imaginary)).astype(np.complex64)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``Aᵀ y`` on the HR grid (the real part of ``Aᴴ y`` with partial Fourier)."""
        out = apply_axis_matrices(np.real(y), self._matrices, transpose=True)
        if self._imaginary is not None:
            out += apply_axis_matrices(np.imag(y), self._imaginary, transpose=True)
        return out
