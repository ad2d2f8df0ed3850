"""The input's PSF, estimated from the image itself (issue 33: blind super-resolution).

An experiment of round 33 (NOTES.md), not part of the package: on brains it was not fitted on,
it told k-space truncation from a Gaussian PSF no better than chance, so nothing uses it.

Nobody knows the PSF of a clinical scan, and a network told the wrong one over-sharpens (a
k-space truncation read as simulate's Gaussian loses 5 dB to spline).  How blurred an image is
shows in its power spectrum: along each voxel axis, how the power falls from the low
frequencies towards the Nyquist frequency.  A brain's own spectrum falls too, differently in
each brain, so one ratio cannot tell the PSF (measured: it varies by as much between brains as
between PSFs); a small regressor on the whole fall-off can, once the noise floor is taken off.

Features, per voxel axis (:func:`spectral_features`): the image normalised by its 99.5th
percentile, tapered by a Hann window along the axis, its 1-D power spectrum along the axis
averaged over all lines, less the power of the noise (white, of the σ that the background gives,
:func:`background_noise_sigma`), in :data:`BANDS` of the axis's Nyquist frequency, as log10 of
each band over the first; and log10 of the noise power over the first band's.

Outputs, per axis (:func:`estimate_psf`): the PSF's width as the FWHM, in the input's voxels, of
the Gaussian of equal transfer (what :func:`mrsr_cli.models.channels.psf_encoding` reads; a
k-space truncation without window is 0, simulate's Gaussian 1), by ridge regression on the
features and their pairwise products; and whether the image is a k-space truncation (logistic
regression), which decides the operator of data consistency.  The coefficients
(``results/psf_estimator_coefficients.json``) come from ``psf_estimator.py`` beside this file: degradations
of the training templates only (ICBM 2009a and the left half of MNI152NLin6Asym), with their
scores on the right half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BANDS = ((0.1, 0.25), (0.25, 0.4), (0.4, 0.55), (0.55, 0.7), (0.7, 0.85), (0.85, 1.0))  # fractions of Nyquist
MIN_AXIS_VOXELS = 16  # shorter axes have too few frequencies to read
MIN_BACKGROUND_VOXELS = 1000
RAYLEIGH_SPREAD = float(np.sqrt(2 - np.pi / 2))  # std of |complex noise of σ| over σ
NOISE_FLOOR = 0.1  # the noise power is taken off a band down to this fraction of it
COEFFICIENTS = Path(__file__).resolve().with_name("results") / "psf_estimator_coefficients.json"
# The estimate is trusted (data consistency runs on it) when the k-space probability is this far from 1/2.
CONFIDENT_PROBABILITY = 0.9


def background_noise_sigma(volume: np.ndarray) -> float:
    """The noise σ (the image's units) of a magnitude image from its background, outside the head
    mask grown by 3 voxels: the median absolute third-order detail there (as
    :func:`mrsr_cli.methods.consistency.estimate_noise_sigma` reads it; a smooth background, as
    templates have, gives 0), over :data:`RAYLEIGH_SPREAD` (the standard deviation of a
    magnitude of complex noise of σ is 0.655 σ).  0 when the background has fewer than
    :data:`MIN_BACKGROUND_VOXELS` voxels."""
    from scipy import ndimage

    from mrsr_cli.evaluation.metrics import head_mask
    from mrsr_cli.methods.consistency import MAD_TO_SIGMA, SECOND_DIFFERENCE

    data = np.asarray(volume, dtype=np.float32)
    outside = ~ndimage.binary_dilation(head_mask(data), iterations=3)
    if outside.sum() < MIN_BACKGROUND_VOXELS:
        return 0.0
    detail = data
    for axis in range(3):
        if data.shape[axis] >= 3:
            detail = ndimage.correlate1d(detail, SECOND_DIFFERENCE, axis=axis, mode="reflect", output=np.float32)
    return float(np.median(np.abs(detail[outside])) * MAD_TO_SIGMA / RAYLEIGH_SPREAD)


def spectral_features(volume: np.ndarray, axis: int, noise_sigma: float = 0.0) -> np.ndarray:
    """The features of one voxel axis of ``volume`` (the module's docstring), a float64 vector of
    ``len(BANDS)`` values: ``len(BANDS) - 1`` band ratios and the noise ratio."""
    data = np.moveaxis(np.asarray(volume, dtype=np.float32), axis, -1)
    scale = float(np.percentile(data[data > 0], 99.5)) if (data > 0).any() else 1.0
    n = data.shape[-1]
    taper = np.hanning(n).astype(np.float32)
    power = np.mean(np.abs(np.fft.rfft(data / scale * taper, axis=-1)) ** 2, axis=tuple(range(data.ndim - 1)))
    noise_power = (noise_sigma / scale) ** 2 * float(np.sum(taper ** 2))
    fraction = np.arange(power.size) / (n / 2)
    bands = []
    for low, high in BANDS:
        inside = (fraction >= low) & (fraction < high) if high < 1 else (fraction >= low) & (fraction <= high)
        bands.append(float(power[inside].mean()) if inside.any() else float(power[-1]))
    bands = np.asarray(bands)
    signal = np.maximum(bands - noise_power, NOISE_FLOOR * bands)  # the noise off, never below NOISE_FLOOR of the band
    return np.concatenate([np.log10(signal[1:] / signal[0]), [np.log10(noise_power / bands[0] + 1e-6)]])


def design(features: np.ndarray) -> np.ndarray:
    """The regressors' inputs: 1, the features and their pairwise products (rows: samples): the
    products read the spectrum's curvature, which tells a PSF's fall-off from a brain's own."""
    features = np.atleast_2d(features)
    i, j = np.triu_indices(features.shape[1])
    return np.hstack([np.ones((features.shape[0], 1)), features, features[:, i] * features[:, j]])


@dataclass(frozen=True)
class PSFEstimate:
    """Per voxel axis: ``fwhm`` (input voxels, the Gaussian of equal transfer; ``None`` where the
    axis is too short to read) and ``kspace_probability``; ``noise_sigma`` in the image's units."""

    fwhm: tuple
    kspace_probability: tuple
    noise_sigma: float

    @property
    def family(self) -> str:
        """``kspace`` or ``psf`` by the mean probability over the axes read."""
        probs = [p for p in self.kspace_probability if p is not None]
        return "kspace" if probs and float(np.mean(probs)) >= 0.5 else "psf"

    @property
    def confident(self) -> bool:
        """Whether every axis read is a clear k-space truncation or a clear PSF."""
        probs = [p for p in self.kspace_probability if p is not None]
        return bool(probs) and all(max(p, 1 - p) >= CONFIDENT_PROBABILITY for p in probs) and \
            len({p >= 0.5 for p in probs}) == 1

    def record(self) -> dict:
        """The sidecar's ``EstimatedPSF``."""
        return {"Family": self.family, "FWHMInputVoxels": [None if v is None else round(float(v), 3) for v in self.fwhm],
                "KSpaceProbability": [None if p is None else round(float(p), 3) for p in self.kspace_probability],
                "Confident": self.confident, "NoiseSigma": round(float(self.noise_sigma), 6)}


@lru_cache(maxsize=1)
def load_coefficients(path: str = str(COEFFICIENTS)) -> dict:
    return json.loads(Path(path).read_text())


def estimate_psf(volume: np.ndarray, coefficients: dict | None = None) -> PSFEstimate:
    """The PSF of ``volume`` (a magnitude image, any units) per voxel axis."""
    coefficients = coefficients or load_coefficients()
    sigma = background_noise_sigma(volume)
    fwhm, probability = [], []
    for axis in range(3):
        if volume.shape[axis] < MIN_AXIS_VOXELS:
            fwhm.append(None)
            probability.append(None)
            continue
        x = design(spectral_features(volume, axis, sigma))[0]
        fwhm.append(float(np.clip(x @ np.asarray(coefficients["fwhm"]), 0.0, coefficients["fwhm_max"])))
        logit = float(x @ np.asarray(coefficients["kspace"]))
        probability.append(float(1.0 / (1.0 + np.exp(-np.clip(logit, -30, 30)))))
    return PSFEstimate(tuple(fwhm), tuple(probability), sigma)


def fit(features: np.ndarray, fwhm: np.ndarray, kspace: np.ndarray, *, ridge: float = 1e-3,
        iterations: int = 200) -> dict:
    """Coefficients for :func:`estimate_psf` from training rows: ridge regression of ``fwhm`` and
    logistic regression (Newton's method, the same ridge) of ``kspace`` (0/1) on :func:`design`."""
    x = design(features)
    penalty = ridge * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    fwhm_coef = np.linalg.solve(x.T @ x + penalty * len(x), x.T @ fwhm)
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - kspace) + penalty @ w * len(x)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty * len(x) + 1e-9 * np.eye(x.shape[1])
        w -= np.linalg.solve(hessian, gradient)
    return {"bands": [list(b) for b in BANDS], "fwhm": fwhm_coef.tolist(), "kspace": w.tolist(),
            "fwhm_max": float(np.max(fwhm))}
