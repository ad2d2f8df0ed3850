"""Simulated low-resolution acquisitions Y = A X + N (Pham et al. 2019, eq. 1).

``A = D↓ B`` is the observation model of :mod:`mrsr_cli.observation` (PSF blur on the HR grid,
cubic B-spline sampling at the LR voxel centres of the FOV-preserving LR grid,
:func:`mrsr_cli.geometry.scaled_grid`).  ``N`` is optional Rician noise whose sigma is a
fraction of the image's 99.5th percentile.

The same functions make training patches on the fly (:func:`lowres_on_hr_grid`), so the
network is trained on exactly the degradation that ``mrsr simulate`` writes.

Example::

    lr, lr_grid, info = simulate_lowres(hr, hr_grid, factor=(2, 2, 3), noise=0.02, seed=0)
"""

from __future__ import annotations

import numpy as np

from .geometry import Grid, resized_grid
from .interpolate import make_resampler
from .observation import ObservationModel


def rician_noise(volume: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` (absolute units)."""
    real = volume + rng.normal(0.0, sigma, volume.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, volume.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag).astype(np.float32)


def robust_max(volume: np.ndarray, percentile: float = 99.5) -> float:
    """The ``percentile`` of the non-zero voxels (1.0 for an all-zero image)."""
    nz = volume[volume > 0]
    if nz.size == 0:
        return 1.0
    return float(np.percentile(nz, percentile))


def simulate_lowres(
    hr: np.ndarray,
    hr_grid: Grid,
    *,
    factor=None,
    voxel_size=None,
    fwhm=None,
    psf: str = "gaussian",
    noise: float = 0.0,
    seed: int | None = None,
) -> tuple[np.ndarray, Grid, dict]:
    """Simulate a low-resolution acquisition of ``hr``.

    Give ``factor`` (LR voxel = factor × HR voxel) or ``voxel_size`` (LR voxel in mm).
    ``fwhm`` is the PSF FWHM in mm per axis (default: the LR voxel size).  ``noise`` is the
    Rician sigma as a fraction of the HR image's 99.5th percentile.  Returns the LR data,
    its grid, and a dict describing the simulation (written to the JSON sidecar).
    """
    if (factor is None) == (voxel_size is None):
        raise ValueError("give exactly one of factor or voxel_size")
    hr_vox = np.asarray(hr_grid.voxel_size)
    lr_vox = hr_vox * np.asarray(factor) if factor is not None else np.asarray(voxel_size, dtype=np.float64)
    lr_grid = resized_grid(hr_grid, tuple(lr_vox))
    fwhm_mm = tuple(float(v) for v in (lr_vox if fwhm is None else fwhm))
    lr = ObservationModel(hr_grid, lr_grid, fwhm_mm, psf).forward(hr)
    sigma_abs = 0.0
    if noise > 0:
        sigma_abs = noise * robust_max(hr)
        lr = rician_noise(lr, sigma_abs, np.random.default_rng(seed))
    info = {
        "factor": [float(v) for v in lr_vox / hr_vox],
        "input_voxel_size_mm": [float(v) for v in hr_vox],
        "output_voxel_size_mm": [float(v) for v in lr_grid.voxel_size],
        "input_shape": list(hr_grid.shape),
        "output_shape": list(lr_grid.shape),
        "psf": psf,
        "fwhm_mm": list(fwhm_mm),
        "noise_fraction": float(noise),
        "noise_sigma": float(sigma_abs),
        "seed": seed,
    }
    return lr, lr_grid, info


def lowres_on_hr_grid(
    hr: np.ndarray, voxel_size, factor, *, psf: str = "gaussian", noise_sigma: float = 0.0,
    rng: np.random.Generator | None = None, order: int = 3,
) -> np.ndarray:
    """Degrade ``hr`` by ``factor`` and spline it back onto its own grid (the ILR image Z).

    This is the training input: same PSF and sampling as :func:`simulate_lowres`, followed by
    the same spline upscaling as ``mrsr upscale --method spline``.
    """
    hr_grid = Grid(hr.shape, np.diag(list(voxel_size) + [1.0]))
    lr_vox = np.asarray(voxel_size) * np.asarray(factor)
    lr_grid = resized_grid(hr_grid, tuple(lr_vox))
    lr = ObservationModel(hr_grid, lr_grid, tuple(lr_vox), psf).forward(hr)
    if noise_sigma > 0 and rng is not None:
        lr = rician_noise(lr, noise_sigma, rng)
    return make_resampler(lr, lr_grid, hr_grid, order=order).full()
