"""What the noise in an image's background says about its reconstruction.

A scanner's thermal noise enters in k-space, white, before the reconstruction; whatever filters
the image after the acquisition's k-space truncation (an apodisation window, a Gaussian blur, an
interpolation onto a finer grid) filters the noise the same way. In the air around the head the
magnitude image is that noise alone (Rayleigh), so its colour there is the reconstruction's
transfer, whatever brain is in the picture: the one cue to the input's PSF that does not depend
on how sharp the brain is (the image's own spectrum does, round 33 of benchmarks/experiments).

The cue is the correlation of neighbouring background voxels along each voxel axis, after each
voxel's local mean (:data:`DETREND` voxels wide, over the background) is taken off, so that smooth
structure in the air (a template's, ghosts, a bias) does not count as colour. Noise that nothing
filtered after the truncation is white (about −0.05 after the detrending): the image keeps its
full contrast up to the voxel's Nyquist frequency, a k-space truncation, and a network that
assumes ``mrsr simulate``'s Gaussian would over-sharpen it. A strong filter makes neighbours
correlate: on pure noise behind it, a Hann window 0.24, Hamming 0.21, a Gaussian of 1.5 voxels
0.14; a mild one reads white (a Tukey window 0.04, a Gaussian of one voxel 0.01), and is then
taken for a plain truncation, the safe side (benchmarks/experiments/33-blind/NOTES.md §14).
No background, or one without noise (a template, a masked or simulated image), tells nothing.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> head = np.zeros((48, 48, 48), np.float32); head[12:36, 12:36, 12:36] = 100
    >>> noisy = np.abs(head + rng.normal(0, 2, head.shape) + 1j * rng.normal(0, 2, head.shape))
    >>> background_noise(noisy).white
    True
    >>> background_noise(head) is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

WHITE_LIMIT = 0.08  # largest detrended lag-1 correlation read as white (validation: noisy k-space ≤ 0.07; NOTES.md §14)
DETREND = 3  # voxels: the width of the local mean taken off (white noise then correlates at about −0.05)
MIN_PAIRS = 2000  # background neighbour pairs per axis for a correlation to count (its error ~1/sqrt(pairs))
MIN_NOISE = 0.002  # background standard deviation, as a fraction of the 99.5th percentile, that is noise at all
HEAD_LEVEL = 0.15  # the head: above this fraction of the 99.5th percentile, smoothed (above 5 % noise's Rayleigh tail)
HEAD_MARGIN = 4  # voxels between the head and the background used (ringing and partial volume stay out)


@dataclass(frozen=True)
class NoiseColour:
    """The background noise of an image: ``correlation`` of neighbours along each voxel axis,
    over ``pairs`` (the fewest of the three axes), its standard deviation ``level`` as a fraction
    of the image's 99.5th percentile, and whether it is ``white`` on every axis."""

    correlation: tuple[float, ...]
    pairs: int
    level: float

    @property
    def white(self) -> bool:
        return max(self.correlation) < WHITE_LIMIT

    def record(self) -> dict:
        """The output sidecar's account of it."""
        return {"NeighbourCorrelation": [round(c, 4) for c in self.correlation], "Pairs": self.pairs,
                "Level": round(self.level, 5), "White": self.white, "WhiteBelow": WHITE_LIMIT}


def background_mask(data: np.ndarray, top: float | None = None) -> np.ndarray:
    """The air around the head: not within :data:`HEAD_MARGIN` voxels of anything above
    :data:`HEAD_LEVEL` of the 99.5th percentile (``top``, when the caller has it; lightly smoothed,
    so that noise does not count as head), nor on the volume's outer faces (where a k-space image
    wraps)."""
    top = float(np.percentile(data, 99.5)) if top is None else top
    head = ndimage.gaussian_filter(data.astype(np.float32), 1.0) > HEAD_LEVEL * top
    head = ndimage.binary_dilation(head, iterations=HEAD_MARGIN)
    inside = np.zeros(data.shape, dtype=bool)
    inside[(slice(1, -1),) * data.ndim] = True
    return ~head & inside


def background_noise(data: np.ndarray) -> NoiseColour | None:
    """The :class:`NoiseColour` of ``data`` (a 3-D magnitude image), or ``None`` when its
    background is too small (fewer than :data:`MIN_PAIRS` neighbour pairs on an axis) or holds no
    noise (below :data:`MIN_NOISE`).  It holds about six arrays of the input's size at once (an
    ×2 output is eight times that size) and takes 0.6 s for a 1 mm brain on 2 cores."""
    data = np.asarray(data, dtype=np.float32)
    top = float(np.percentile(data, 99.5))
    if data.ndim != 3 or top <= 0:
        return None
    background = background_mask(data, top)
    values = data[background]
    if values.size < MIN_PAIRS:
        return None
    spread = float(values.std())  # the noise level, once: the check below and the record
    if spread < MIN_NOISE * top:
        return None
    weight = ndimage.uniform_filter(background.astype(np.float32), DETREND)
    local = ndimage.uniform_filter(np.where(background, data, 0.0).astype(np.float32), DETREND) / np.maximum(weight, 1e-6)
    centred = np.where(background, data - local, np.float32(0))
    correlation, pairs = [], []
    for axis in range(3):
        head = [slice(None)] * 3
        tail = [slice(None)] * 3
        head[axis], tail[axis] = slice(None, -1), slice(1, None)
        both = background[tuple(head)] & background[tuple(tail)]
        a, b = centred[tuple(head)][both], centred[tuple(tail)][both]
        pairs.append(int(both.sum()))
        correlation.append(float(np.dot(a, b) / max(np.sqrt(np.dot(a, a) * np.dot(b, b)), 1e-30)))
    if min(pairs) < MIN_PAIRS:
        return None
    return NoiseColour(tuple(correlation), min(pairs), spread / top)
