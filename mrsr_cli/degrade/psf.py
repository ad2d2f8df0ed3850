"""The PSF shapes: one table that the observation model, ``simulate``, training and the PSF
channels all read.

A shape is a separable 1-D blur of a given width (its FWHM in voxels; boundaries mirrored,
``scipy.ndimage`` mode ``reflect``), plus the FWHM of the Gaussian of equal variance per unit
width, which is how a model's PSF channels describe it
(:func:`mrsr_cli.models.channels.psf_encoding`).  Adding a shape is one entry of
:data:`PSF_SHAPES` (and its name in ``mrsr_cli.app.options.PSF_SHAPES``, which a test keeps
equal): ``simulate --psf``, ``--slice-profile``, ``upscale --input-psf``, the adjoint of the
observation model and the ``psf`` training augmentation then know it.

>>> sorted(PSF_SHAPES)
['box', 'gaussian', 'sinc']
>>> import numpy as np
>>> blurred = PSF_SHAPES["box"].filter(np.eye(5)[2], 3.0, 0, None)
>>> [round(float(v), 3) for v in blurred]
[0.0, 0.333, 0.333, 0.333, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import ndimage

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
# A box of width w has the variance of a Gaussian of FWHM w·sqrt(8 ln 2 / 12) ≈ 0.68 w.
BOX_TO_GAUSSIAN_FWHM = float(np.sqrt(8.0 * np.log(2.0) / 12.0))


def box_kernel(width_voxels: float) -> np.ndarray:
    """1-D kernel of a box ``width_voxels`` wide integrated over each unit voxel (sums to 1)."""
    half = width_voxels / 2.0
    radius = int(np.ceil(half + 0.5))
    edges = np.arange(-radius, radius + 1, dtype=np.float64)
    lo = np.clip(edges - 0.5, -half, half)
    hi = np.clip(edges + 0.5, -half, half)
    kernel = np.trim_zeros(np.clip(hi - lo, 0.0, None))
    return kernel / kernel.sum()


def _gaussian(a: np.ndarray, width_voxels: float, axis: int, output) -> np.ndarray:
    return ndimage.gaussian_filter1d(a, sigma=width_voxels * FWHM_TO_SIGMA, axis=axis, mode="reflect", truncate=4.0, output=output)


def _box(a: np.ndarray, width_voxels: float, axis: int, output) -> np.ndarray:
    return ndimage.correlate1d(a, box_kernel(width_voxels).astype(a.dtype), axis=axis, mode="reflect", output=output)


# A 2-D multi-slice excitation: a Hann-windowed sinc RF pulse of this time-bandwidth product (a common
# default), whose slice profile (small flip angle: the pulse's Fourier transform) is a rectangle with
# soft edges and small side lobes; its FWHM is the slice thickness.
SINC_TIME_BANDWIDTH = 4.0


@lru_cache(maxsize=1)
def windowed_sinc_profile() -> tuple[np.ndarray, np.ndarray]:
    """``(z, profile)``: the slice profile of the windowed-sinc pulse, ``z`` in units of its FWHM
    (the profile is 0.5 at ``z = ±0.5``), peak 1."""
    t = np.linspace(-0.5, 0.5, 1001)
    pulse = np.sinc(SINC_TIME_BANDWIDTH * t) * (0.5 + 0.5 * np.cos(2 * np.pi * t))
    z = np.linspace(-1.5, 1.5, 3001) * SINC_TIME_BANDWIDTH
    profile = np.cos(2 * np.pi * np.outer(z, t)) @ pulse
    profile /= profile.max()
    half = z[profile >= 0.5]
    return z / (half.max() - half.min()), profile


def windowed_sinc_kernel(width_voxels: float) -> np.ndarray:
    """1-D kernel of the windowed-sinc slice profile of FWHM ``width_voxels``, integrated over each
    unit voxel (sums to 1; its small side lobes are negative, as a real profile's are)."""
    z, profile = windowed_sinc_profile()
    radius = int(np.ceil(1.5 * width_voxels + 0.5))
    inside = np.linspace(-0.5, 0.5, 21)
    kernel = np.array([np.interp((k + inside) / width_voxels, z, profile, left=0.0, right=0.0).mean()
                       for k in range(-radius, radius + 1)])
    return kernel / kernel.sum()


def _sinc_gaussian_fwhm() -> float:
    """The FWHM of the Gaussian of the windowed-sinc profile's variance, per unit FWHM."""
    z, profile = windowed_sinc_profile()
    weights = profile / profile.sum()
    return float(np.sqrt(np.sum(weights * z * z)) / FWHM_TO_SIGMA)


def _sinc(a: np.ndarray, width_voxels: float, axis: int, output) -> np.ndarray:
    return ndimage.correlate1d(a, windowed_sinc_kernel(width_voxels).astype(a.dtype), axis=axis, mode="reflect",
                               output=output)


@dataclass(frozen=True)
class PSFShape:
    """``filter(array, width_voxels, axis, output)`` blurs along one axis; ``gaussian_fwhm``: the
    FWHM of the Gaussian of equal variance, per unit width."""

    filter: Callable[[np.ndarray, float, int, object], np.ndarray]
    gaussian_fwhm: float


PSF_SHAPES: dict[str, PSFShape] = {
    "gaussian": PSFShape(_gaussian, 1.0),
    "box": PSFShape(_box, BOX_TO_GAUSSIAN_FWHM),  # a block mean, or a box slice profile
    "sinc": PSFShape(_sinc, _sinc_gaussian_fwhm()),  # a windowed-sinc pulse's slice profile (2-D multi-slice)
}
PSFS = PSF_SHAPES  # the names, as a live view: a shape added to the table is known to every check
