"""Match a k-space input to the PSF the default network learned: ``mrsr simulate``'s Gaussian.

A scanner's image (Cartesian k-space truncation, ``upscale --input-psf kspace``) keeps every
frequency below its voxel's Nyquist frequency at full contrast; ``mrsr simulate``'s Gaussian PSF
(FWHM one LR voxel) keeps 41 % at the Nyquist frequency, and the default network learned to
undo exactly that, so on a scanner's image it over-sharpens.  Multiplying the input's spectrum by
that Gaussian's transfer makes the input what the network learned from, within the band (without
simulate's aliasing), and loses nothing the network cannot undo.  The output's band is then put
back to the input's own frequencies by the k-space data consistency
(:func:`mrsr_cli.methods.consistency.make_consistent`): benchmarks/experiments/33-blind/NOTES.md §16.

Units: FWHM in input voxels per axis.  The transfer of a Gaussian of standard deviation ``σ``
voxels is ``exp(−2 π² σ² f²)`` at ``f`` cycles per voxel (0.41 at the Nyquist frequency for a
FWHM of one voxel).  The DFT treats the image as periodic: it is mirrored by :data:`PAD` voxels on
every side first, so opposite faces do not blur into each other.

>>> import numpy as np
>>> line = np.zeros((1, 1, 64), dtype=np.float32); line[..., 32] = 1.0
>>> blurred = match_to_simulate(line, (0.0, 0.0, 1.0))
>>> transfer = np.abs(np.fft.rfft(blurred[0, 0]))  # at 0, 1/4 and 1/2 cycle per voxel:
>>> [round(float(transfer[i]), 3) for i in (0, 16, 32)]
[1.0, 0.801, 0.412]
"""

from __future__ import annotations

import numpy as np

SIMULATE_FWHM_VOXELS = 1.0  # mrsr simulate's PSF: a Gaussian of FWHM one LR voxel on every axis
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
PAD = 4  # voxels mirrored on every side: the kernel of one voxel's FWHM is negligible beyond 3 voxels
# Input-sized float32 volumes held at the peak (padded copy, half spectrum ×2 as complex64, output)
MATCH_VOLUMES = 5


def match_to_simulate(data: np.ndarray, fwhm_voxels=(SIMULATE_FWHM_VOXELS,) * 3) -> np.ndarray:
    """``data`` (float32, 3-D) blurred by a Gaussian of ``fwhm_voxels`` per axis, applied as its
    exact transfer in the Fourier domain; float32, the same shape.  Holds about
    :data:`MATCH_VOLUMES` input-sized float32 volumes at its peak."""
    from scipy import fft, ndimage

    pads = [(PAD, PAD) if w > 0 else (0, 0) for w in fwhm_voxels]
    padded = np.pad(np.asarray(data, dtype=np.float32), pads, mode="symmetric")
    sigma = [float(w) * FWHM_TO_SIGMA for w in fwhm_voxels]
    spectrum = ndimage.fourier_gaussian(fft.rfftn(padded, workers=-1), sigma, n=padded.shape[-1])
    out = fft.irfftn(spectrum, s=padded.shape, workers=-1).astype(np.float32, copy=False)
    return np.ascontiguousarray(out[tuple(slice(a, n - b) for (a, b), n in zip(pads, padded.shape))])
