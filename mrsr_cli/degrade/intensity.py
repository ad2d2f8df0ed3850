"""Intensity degradations of an acquisition, applied before it: a smooth bias field (receive-coil
inhomogeneity) and a gamma (contrast that differs between scanners and sequences).

Ranges follow SynthSR's generator: bias std up to 0.3 (of the log field), gamma exp(N(0, 0.5)).
Neither is linear in the image, so neither has an adjoint; data consistency never models them.

>>> import numpy as np
>>> field = bias_field((20, 24, 28), 0.3, np.random.default_rng(0))
>>> field.shape, round(float(np.log(field).std()), 2)
((20, 24, 28), 0.3)
>>> apply_gamma(np.array([0.0, 50.0, 100.0], np.float32), 2.0, scale=100.0).tolist()
[0.0, 25.0, 100.0]
"""

from __future__ import annotations

import numpy as np

from mrsr_cli.errors import UsageError

BIAS_RANGE = (0.0, 1.0)  # std of the log field
GAMMA_RANGE = (0.25, 4.0)
BIAS_CONTROL_POINTS = 4  # per axis: the field varies over about a quarter of the field of view


def check_intensity(bias: float, gamma: float) -> None:
    """A :class:`UsageError` for a bias std or a gamma out of range."""
    if not BIAS_RANGE[0] <= bias <= BIAS_RANGE[1]:
        raise UsageError(f"--bias must be in [{BIAS_RANGE[0]:g}, {BIAS_RANGE[1]:g}] (std of the log field), got {bias:g}")
    if not GAMMA_RANGE[0] <= gamma <= GAMMA_RANGE[1]:
        raise UsageError(f"--gamma must be in [{GAMMA_RANGE[0]:g}, {GAMMA_RANGE[1]:g}], got {gamma:g}")


def bias_field(shape, std: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field of ``shape``: exp of Gaussian noise on a coarse grid of
    :data:`BIAS_CONTROL_POINTS` per axis, cubic-spline upsampled, scaled to a log std of ``std``."""
    from scipy import ndimage

    coarse = rng.standard_normal((BIAS_CONTROL_POINTS,) * 3)
    log_field = ndimage.zoom(coarse, [n / BIAS_CONTROL_POINTS for n in shape], order=3, mode="nearest")
    log_field = log_field[tuple(slice(0, n) for n in shape)]
    log_field = (log_field - log_field.mean()) / max(float(log_field.std()), 1e-12) * std
    return np.exp(log_field).astype(np.float32)


def apply_gamma(volume: np.ndarray, gamma: float, scale: float) -> np.ndarray:
    """``scale · (max(volume, 0) / scale)^gamma``: intensities keep their units, ``scale`` (e.g. the
    99.5th percentile) its value."""
    return (scale * (np.clip(volume, 0, None) / scale) ** gamma).astype(np.float32)
