"""The observation model ``A = D↓ B`` (Pham et al. 2019, eq. 1) and its exact adjoint.

``B`` is the point-spread function (PSF) on the high-resolution (HR) grid, separable per voxel
axis: a Gaussian whose full width at half maximum (FWHM, mm) defaults to the LR voxel size
(Pham §7: FWHM = slice thickness), or a box of that width, the shape chosen per axis (a thick-slice
acquisition: Gaussian in plane, a box slice profile through plane); boundaries are mirrored
(``scipy.ndimage`` mode ``reflect``, half-sample symmetric).  An axis whose FWHM is not
larger than its HR voxel is left as it is.  ``D↓`` samples the blurred image at the LR voxel
centres with a cubic B-spline (:mod:`mrsr_cli.data.interpolate`).  The LR grid must have its voxel
axes parallel to the HR grid's (every FOV-preserving resize does, oblique or not: see
:func:`mrsr_cli.data.geometry.resized_grid`), so both operators are separable: one matrix per axis.

:meth:`ObservationModel.forward` is exactly what ``mrsr simulate`` writes (before noise) and
what training degrades patches with; :meth:`ObservationModel.adjoint` is its transpose
(``<A x, y> = <x, Aᵀ y>``), which iterative methods (LRTV) need.

Example::

    >>> import numpy as np
    >>> from mrsr_cli.data.geometry import Grid, scaled_grid
    >>> hr = Grid((24, 24, 24), np.eye(4))
    >>> A = ObservationModel(hr, scaled_grid(hr, (2, 2, 3)))
    >>> x, y = np.random.default_rng(0).random((2, 24, 24, 24), dtype=np.float32)
    >>> A.forward(x).shape
    (12, 12, 8)
    >>> lhs = float(np.vdot(A.forward(x), y[:12, :12, :8])); rhs = float(np.vdot(x, A.adjoint(y[:12, :12, :8])))
    >>> abs(lhs - rhs) / abs(lhs) < 1e-5
    True
"""

from __future__ import annotations

import numpy as np

from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.data.geometry import Grid, axis_aligned_mapping, voxel_mapping
from mrsr_cli.data.interpolate import SeparableResampler, _apply_axis, axis_weights

from mrsr_cli.degrade.psf import PSF_SHAPES, PSFS


def check_input_psf(shape: str, fwhm_mm=None, grid: Grid | None = None) -> None:
    """A :class:`~mrsr_cli.errors.UsageError` unless ``shape`` is one of :data:`PSFS` and each
    ``fwhm_mm`` (mm per axis, ``None``: the voxel size) is >= 0 and, given the input's ``grid``,
    not absurdly wide (:func:`check_psf_width`): how ``upscale`` is told the input's PSF.

    >>> check_input_psf("lorentz")
    Traceback (most recent call last):
    ...
    mrsr_cli.errors.UsageError: --input-psf must be one of gaussian, box, sinc or kspace, got 'lorentz'
    """
    if shape == KSPACE:
        if fwhm_mm is not None:
            raise UsageError("--input-fwhm does not apply to --input-psf kspace (a k-space truncation has no PSF width)")
        return
    if shape not in PSFS:
        raise UsageError(f"--input-psf must be one of {', '.join(PSFS)} or kspace, got {shape!r}")
    if fwhm_mm is not None and any(float(v) < 0 for v in np.atleast_1d(fwhm_mm)):
        raise UsageError("--input-fwhm values must be >= 0 (mm)")
    if fwhm_mm is not None and grid is not None:
        for fwhm, vox, n in zip(np.broadcast_to(np.asarray(fwhm_mm, dtype=float), (3,)), grid.voxel_size, grid.shape):
            check_psf_width(fwhm / vox, n, vox)


def psf_shapes(psf) -> tuple[str, str, str]:
    """One PSF shape per axis from a shape or three (``"box"`` → ``("box", "box", "box")``)."""
    shapes = (psf,) * 3 if isinstance(psf, str) else tuple(psf)
    if len(shapes) != 3 or any(s not in PSFS for s in shapes):
        raise ValueError(f"psf must be one of {', '.join(PSFS)} or one per axis, got {psf!r}")
    return shapes


def apply_psf(volume: np.ndarray, voxel_size, fwhm_mm, psf="gaussian") -> np.ndarray:
    """Blur ``volume`` (voxel sizes ``voxel_size`` mm) with a PSF of ``fwhm_mm`` per axis and
    shape ``psf`` (one for all axes, or one per axis).

    An axis whose FWHM is not larger than its voxel is left as it is (the HR image already
    carries a PSF of about one voxel).
    """
    shapes = psf_shapes(psf)
    out = np.asarray(volume, dtype=np.float32)
    for axis, (fwhm, vox) in enumerate(zip(fwhm_mm, voxel_size)):
        width = fwhm / vox  # in voxels
        if width <= 1.0 + 1e-6:
            continue
        check_psf_width(width, out.shape[axis], vox)
        out = PSF_SHAPES[shapes[axis]].filter(out, width, axis, np.float32)
    return out


# A PSF wider than this many image extents blurs everything to its mean, and its kernel alone could
# exhaust memory: a mistyped FWHM is refused before it is allocated.
MAX_PSF_EXTENTS = 4


def check_psf_width(width_voxels: float, n: int, voxel_mm: float) -> None:
    """A :class:`UsageError` for a PSF ``width_voxels`` wide on an axis of ``n`` voxels of ``voxel_mm``."""
    if not np.isfinite(width_voxels) or width_voxels > MAX_PSF_EXTENTS * max(n, 1):
        raise UsageError(f"a PSF of FWHM {width_voxels * voxel_mm:g} mm is more than {MAX_PSF_EXTENTS} times the image's "
                         f"extent on an axis ({n} voxels of {voxel_mm:g} mm): check --fwhm, --input-fwhm or --slice-thickness")


def _psf_axis_matrix(n: int, width_voxels: float, psf: str) -> np.ndarray:
    """The ``n × n`` matrix of the 1-D PSF along one axis (column j = the blurred unit impulse at j)."""
    return PSF_SHAPES[psf].filter(np.eye(n, dtype=np.float64), width_voxels, 0, None)


class GridPair:
    """What an operator from ``hr_grid`` to ``lr_grid`` (same field of view, voxel axes parallel:
    ``self._scale``, ``self._offset`` map HR voxel indices to LR ones) knows of the two grids."""

    @property
    def factor(self) -> np.ndarray:
        """The upscaling factor per voxel axis: LR voxel size / HR voxel size (HR voxels per LR voxel)."""
        return np.abs(np.asarray(self._scale, dtype=np.float64))

    def _hr_centres_in_lr(self, axis: int) -> np.ndarray:
        """The HR voxel centres along ``axis`` in LR voxel coordinates (LR centres at integers)."""
        return (np.arange(self.hr_grid.shape[axis]) - self._offset[axis]) / self._scale[axis]

    def outside_lr_fov(self) -> list[np.ndarray]:
        """Per voxel axis, which HR voxels lie outside the LR image's field of view (their centre
        more than half an LR voxel beyond the first or last LR centre): where ``upscale``, which
        does not extrapolate, writes zeros (:func:`mrsr_cli.data.interpolate.axis_weights`)."""
        masks = []
        for axis, n_lr in enumerate(self.lr_grid.shape):
            coords = self._hr_centres_in_lr(axis)
            masks.append((coords < -0.5 - 1e-6) | (coords > n_lr - 0.5 + 1e-6))
        return masks

    def upsampling_matrices(self, order: int = 1) -> list[np.ndarray]:
        """Per voxel axis, the dense float32 (HR voxels × LR voxels) B-spline interpolation matrix
        of ``order`` from the LR grid at the HR voxel centres
        (:func:`mrsr_cli.data.interpolate.axis_weights`), for :func:`apply_axis_matrices`: the rows
        of HR voxels outside the LR field of view (:meth:`outside_lr_fov`) are zero, as
        ``upscale`` writes them."""
        return [axis_weights(n_lr, self._hr_centres_in_lr(axis), order).toarray()
                for axis, n_lr in enumerate(self.lr_grid.shape)]


class ObservationModel(GridPair):
    """``A = D↓ B`` from ``hr_grid`` to ``lr_grid`` with a PSF of ``fwhm_mm`` per axis (default:
    the LR voxel size) and shape ``psf`` (a name of :data:`PSFS`, or one per axis).  Arrays are
    float32 in the grids' voxel order; the forward output is on ``lr_grid``, the adjoint's on
    ``hr_grid``."""

    def __init__(self, hr_grid: Grid, lr_grid: Grid, fwhm_mm=None, psf="gaussian"):
        psf = psf_shapes(psf)
        mapping = axis_aligned_mapping(voxel_mapping(hr_grid, lr_grid))
        if mapping is None:
            raise MrsrError("the observation model needs an LR grid whose voxel axes are parallel to the HR grid's")
        self.hr_grid, self.lr_grid, self.psf = hr_grid, lr_grid, psf
        self.fwhm_mm = tuple(float(v) for v in (lr_grid.voxel_size if fwhm_mm is None else fwhm_mm))
        for fwhm, vox, n in zip(self.fwhm_mm, hr_grid.voxel_size, hr_grid.shape):
            check_psf_width(fwhm / vox, n, vox)
        self._scale, self._offset = mapping
        self._sample_weights = None
        self._psf_matrices: dict[int, np.ndarray] = {}

    # -- B and Bᵀ
    def _blurred_axes(self):
        for axis, (fwhm, vox) in enumerate(zip(self.fwhm_mm, self.hr_grid.voxel_size)):
            if fwhm / vox > 1.0 + 1e-6:
                yield axis, fwhm / vox

    def blur(self, x: np.ndarray) -> np.ndarray:
        """``B x`` on the HR grid."""
        return apply_psf(x, self.hr_grid.voxel_size, self.fwhm_mm, self.psf)

    def blur_adjoint(self, x: np.ndarray) -> np.ndarray:
        """``Bᵀ x``: the transpose of the mirrored-boundary PSF, one matrix per axis."""
        out = np.asarray(x, dtype=np.float32)
        for axis, width in self._blurred_axes():
            if axis not in self._psf_matrices:
                self._psf_matrices[axis] = _psf_axis_matrix(self.hr_grid.shape[axis], width, self.psf[axis])
            out = _apply_dense(out, self._psf_matrices[axis].T, axis)
        return np.ascontiguousarray(out, dtype=np.float32)

    # -- D and Dᵀ
    def _weights(self):
        if self._sample_weights is None:
            self._sample_weights = [axis_weights(self.hr_grid.shape[a], self._offset[a] + self._scale[a] * np.arange(n), 3)
                                    for a, n in enumerate(self.lr_grid.shape)]
        return self._sample_weights

    def sample(self, x: np.ndarray) -> np.ndarray:
        """``D↓ x``: cubic B-spline values of an HR-grid image at the LR voxel centres."""
        return SeparableResampler(x, self._scale, self._offset, self.lr_grid.shape, 3, weights=self._weights()).full()

    def sample_adjoint(self, y: np.ndarray) -> np.ndarray:
        """``D↓ᵀ y``: an LR-grid image spread back onto the HR grid."""
        out = np.asarray(y, dtype=np.float32)
        for axis, w in enumerate(self._weights()):
            out = _apply_axis(out, w.T.tocsr(), axis)
        return out

    def axis_matrices(self) -> list[np.ndarray]:
        """``A`` as one dense float32 matrix per voxel axis (LR voxels × HR voxels: sampling after
        the PSF), so that ``A x`` is the three applied in turn (:func:`apply_axis_matrices`) and
        ``Aᵀ y`` their transposes: the same operator as :meth:`forward`, to float32 rounding, at a
        fraction of the cost when it is applied many times (data consistency)."""
        blurred = dict(self._blurred_axes())
        matrices = []
        for axis, weights in enumerate(self._weights()):
            dense = weights.toarray()
            if axis in blurred:
                dense = dense @ _psf_axis_matrix(self.hr_grid.shape[axis], blurred[axis], self.psf[axis])
            matrices.append(np.ascontiguousarray(dense, dtype=np.float32))
        return matrices

    # -- A and Aᵀ
    def forward(self, x: np.ndarray) -> np.ndarray:
        """``A x = D↓ B x``: the noiseless LR image of an HR image."""
        return self.sample(self.blur(x))

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        """``Aᵀ y = Bᵀ D↓ᵀ y``."""
        return self.blur_adjoint(self.sample_adjoint(y))


def apply_axis_matrices(volume: np.ndarray, matrices, transpose: bool = False) -> np.ndarray:
    """Apply one matrix per voxel axis (``out[i', j', k'] = Σ M₀[i',i] M₁[j',j] M₂[k',k] v[i,j,k]``),
    or their transposes; float32 in and out.

    >>> m = [np.full((1, n), 1 / n, dtype=np.float32) for n in (2, 3, 4)]
    >>> apply_axis_matrices(np.ones((2, 3, 4), np.float32), m).shape
    (1, 1, 1)
    """
    out = np.asarray(volume, dtype=np.float32)
    for axis, matrix in enumerate(matrices):
        out = _apply_dense(out, matrix.T if transpose else matrix, axis)
    return np.ascontiguousarray(out, dtype=np.float32)


def _apply_dense(volume: np.ndarray, matrix: np.ndarray, axis: int) -> np.ndarray:
    """``matrix`` applied along one voxel axis of ``volume``."""
    return np.moveaxis(np.tensordot(matrix, np.moveaxis(volume, axis, 0), axes=1), 0, axis)


KSPACE = "kspace"  # --input-psf kspace: the input is a k-space truncation (a scanner's), not a PSF blur


def input_model(hr_grid: Grid, lr_grid: Grid, fwhm_mm=None, psf: str = "gaussian"):
    """The operator that made an input on ``lr_grid`` from an image on ``hr_grid``, as ``upscale
    --input-psf/--input-fwhm`` describe it: :class:`ObservationModel` for a PSF shape, the
    :class:`~mrsr_cli.degrade.kspace.KSpaceModel` (no window) for ``kspace``."""
    if psf == KSPACE:
        from mrsr_cli.degrade.kspace import KSpaceModel

        return KSpaceModel(hr_grid, lr_grid)
    return ObservationModel(hr_grid, lr_grid, fwhm_mm, psf)
