"""The observation model Y = D↓ B X + N (Pham et al. 2019, eq. 1).

``B`` is the point-spread function (PSF) applied on the high-resolution (HR) grid: a Gaussian
whose full width at half maximum (FWHM, mm) defaults to the LR voxel size along each axis
(Pham §7: FWHM = slice thickness), or a box of that width.  ``D↓`` samples the blurred image
at the LR voxel centres of the FOV-preserving LR grid (:func:`mrsr_cli.geometry.scaled_grid`)
with a cubic B-spline.  ``N`` is optional Rician noise whose sigma is a fraction of the
image's 99.5th percentile.

The same functions make training patches on the fly (:func:`lowres_on_hr_grid`), so the
network is trained on exactly the degradation that ``mrsr simulate`` writes.

Example::

    lr, lr_grid, info = simulate_lowres(hr, hr_grid, factor=(2, 2, 3), noise=0.02, seed=0)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .geometry import Grid, resized_grid
from .interpolate import make_resampler

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
PSFS = ("gaussian", "box")


def box_kernel(width_voxels: float) -> np.ndarray:
    """1-D kernel of a box ``width_voxels`` wide integrated over each unit voxel (sums to 1)."""
    half = width_voxels / 2.0
    radius = int(np.ceil(half + 0.5))
    edges = np.arange(-radius, radius + 1, dtype=np.float64)
    lo = np.clip(edges - 0.5, -half, half)
    hi = np.clip(edges + 0.5, -half, half)
    kernel = np.trim_zeros(np.clip(hi - lo, 0.0, None))
    return kernel / kernel.sum()


def apply_psf(volume: np.ndarray, voxel_size, fwhm_mm, psf: str = "gaussian") -> np.ndarray:
    """Blur ``volume`` (voxel sizes ``voxel_size`` mm) with a PSF of ``fwhm_mm`` per axis.

    An axis whose FWHM is not larger than its voxel is left as it is (the HR image already
    carries a PSF of about one voxel).
    """
    if psf not in PSFS:
        raise ValueError(f"psf must be one of {PSFS}")
    out = np.asarray(volume, dtype=np.float32)
    for axis, (fwhm, vox) in enumerate(zip(fwhm_mm, voxel_size)):
        width = fwhm / vox  # in voxels
        if width <= 1.0 + 1e-6:
            continue
        if psf == "gaussian":
            out = ndimage.gaussian_filter1d(out, sigma=width * FWHM_TO_SIGMA, axis=axis, mode="reflect", truncate=4.0, output=np.float32)
        else:
            out = ndimage.correlate1d(out, box_kernel(width).astype(np.float32), axis=axis, mode="reflect", output=np.float32)
    return out


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
    blurred = apply_psf(hr, hr_vox, fwhm_mm, psf)
    lr = make_resampler(blurred, hr_grid, lr_grid, order=3).full()
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
    blurred = apply_psf(hr, voxel_size, tuple(lr_vox), psf)
    lr = make_resampler(blurred, hr_grid, lr_grid, order=3).full()
    if noise_sigma > 0 and rng is not None:
        lr = rician_noise(lr, noise_sigma, rng)
    return make_resampler(lr, lr_grid, hr_grid, order=order).full()
