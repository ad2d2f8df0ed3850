"""Augmentations of training patches, and the synthetic references of guided training.

The augmentations of one HR patch's intensities are a registry, :data:`PATCH_AUGMENTATIONS`,
applied in its order to the patch before the LR input is simulated from it.  As in TorchIO,
each draws its random parameters (``draw(rng, shape)``) apart from applying them
(``apply(hr, params)``), so a pair of images can share one draw.  The other names of
``--augment`` act elsewhere: ``flip`` and ``permute`` move every array of a patch alike, and
``noise``, ``psf`` and ``affine`` are parts of the simulation (:mod:`mrsr_cli.training.sampler`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from mrsr_cli.training.volumes import TrainingVolume


# Rigid MI registration of a reference of another contrast onto a x2 or x(2,2,3) input leaves
# 0.07-0.16 mm of error (benchmarks/registration_accuracy.py). A larger training shift (it was
# 0.5 voxel) teaches the network to distrust exactly the fine edges that x2 needs.
REFERENCE_SHIFT_VOXELS = 0.15


def synthetic_reference(hr: np.ndarray, tissue: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A random-contrast view of the same anatomy (domain randomisation, SynthSR-style).

    A random smooth, possibly non-monotone intensity mapping of the HR image, plus a random
    mixture of tissue probability maps when given, plus noise and a sub-voxel shift of up to
    ``REFERENCE_SHIFT_VOXELS`` per axis, the residual error of ``upscale --register``.
    """
    from scipy import ndimage

    knots = rng.uniform(0, 1, size=6)
    x = np.clip(hr, 0, 1.5)
    mapped = np.interp(x, np.linspace(0, 1.5, 6), knots).astype(np.float32) * (hr > 0.02)
    if tissue is not None:
        weights = rng.uniform(-1, 1, size=tissue.shape[0]).astype(np.float32)
        mapped = mapped + np.tensordot(weights, tissue, axes=1).astype(np.float32)
    mapped = mapped - mapped.min()
    mapped = mapped / max(float(np.percentile(mapped, 99.5)), 1e-6)
    shift = rng.uniform(-REFERENCE_SHIFT_VOXELS, REFERENCE_SHIFT_VOXELS, size=3)
    mapped = ndimage.shift(mapped, shift, order=1, mode="nearest")
    return (mapped + rng.normal(0, rng.uniform(0, 0.03), mapped.shape)).astype(np.float32)


def fine_detail(shape, rng: np.random.Generator) -> np.ndarray:
    """Random thin sheets (about a voxel thick) of random sign and contrast, to add to a normalised
    HR image.

    The templates we train on are averages of many brains and lack a single scan's fine
    structure (narrow sulci, vessels); what they keep, the LR image mostly predicts, so a guided
    network learns it can ignore its reference.  Sheets added to the target *before* the
    reference is made from it are structure that a ×2–4 LR image blurs away and only the
    reference shows.  The sheets are the zero-level surfaces of Gaussian-smoothed white noise
    (σ 1–2.5 voxels), with contrast up to 0.2 of the white-matter intensity.

    >>> d = fine_detail((32, 32, 32), np.random.default_rng(0))
    >>> d.shape, bool(np.abs(d).max() <= 0.2)
    ((32, 32, 32), True)
    """
    from scipy import ndimage

    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), rng.uniform(1.0, 2.5), mode="wrap")
    field_ /= max(float(field_.std()), 1e-6)
    sheets = np.exp(-(field_ / rng.uniform(0.1, 0.3)) ** 2)
    return (rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.2) * sheets).astype(np.float32)


def add_fine_detail(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``hr`` (normalised) with :func:`fine_detail` sheets added inside the head (> 0.02), clipped at 0."""
    return _add_sheets(hr, fine_detail(hr.shape, rng))


def _add_sheets(hr: np.ndarray, sheets: np.ndarray) -> np.ndarray:
    return np.clip(hr + sheets * (hr > 0.02), 0, None)


def warp_volume(vol: TrainingVolume, rng: np.random.Generator) -> TrainingVolume:
    """A randomly rotated (±10° per axis) and scaled (0.9–1.1 per axis) copy of a training
    volume, about its centre, on the same voxel grid (cubic spline), with its reference and
    tissue maps: other head shapes and sizes, so that a network trained on one template
    cannot memorise its anatomy."""
    from scipy import ndimage
    from scipy.spatial.transform import Rotation

    from mrsr_cli.evaluation.metrics import head_mask

    matrix = Rotation.from_euler("xyz", rng.uniform(-10, 10, 3), degrees=True).as_matrix() @ np.diag(rng.uniform(0.9, 1.1, 3))
    centre = (np.array(vol.data.shape) - 1) / 2
    offset = centre - matrix @ centre

    def warp(a):
        return ndimage.affine_transform(a, matrix, offset=offset, order=3, mode="constant", cval=0.0, output=np.float32)

    data = np.clip(warp(vol.data), 0, None)
    ref = np.clip(warp(vol.reference), 0, None) if vol.reference is not None else None
    tissue = np.stack([np.clip(warp(t), 0, 1) for t in vol.tissue]) if vol.tissue is not None else None
    return TrainingVolume(data, vol.voxel_size, np.argwhere(head_mask(data)), ref, tissue, vol.source, vol.sha256)


def bias_field(shape, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field: exp of a random linear plus quadratic polynomial per axis."""
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    field_ = sum(rng.normal(0, 0.1) * g for g in grids) + sum(rng.normal(0, 0.05) * g * g for g in grids)
    return np.exp(field_).astype(np.float32)


def draw_intensity(rng: np.random.Generator, shape=None) -> tuple[float, float]:
    """``(gamma, scale)`` of a random intensity mapping ``x ↦ scale · max(x, 0)^gamma``."""
    return rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.15)


def apply_intensity(a: np.ndarray, params: tuple[float, float]) -> np.ndarray:
    gamma, scale = params
    return (np.clip(a, 0, None) ** gamma * scale).astype(np.float32)


def _blur(hr: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(hr, sigma, mode="nearest", output=np.float32)


@dataclass(frozen=True)
class Augmentation:
    """``apply(hr, draw(rng, hr.shape))``: a random change of a normalised HR patch."""

    draw: Callable[[np.random.Generator, tuple], Any]
    apply: Callable[[np.ndarray, Any], np.ndarray]


PATCH_AUGMENTATIONS: dict[str, Augmentation] = {
    # thin sheets of contrast, before the reference is made from the target: the reference shows them
    "detail": Augmentation(lambda rng, shape: fine_detail(shape, rng), _add_sheets),
    # the HR image's own sharpness varies (Gaussian σ 0-1 voxel): how blurred an input looks then
    # no longer tells the factor, and the network has to read its factor channels
    "sharpness": Augmentation(lambda rng, shape: rng.uniform(0, 1.0), _blur),
    "bias": Augmentation(lambda rng, shape: bias_field(shape, rng), lambda hr, field_: hr * field_),
    "intensity": Augmentation(draw_intensity, apply_intensity),
}


def augment_patch(hr: np.ndarray, names, rng: np.random.Generator) -> np.ndarray:
    """``hr`` through each of :data:`PATCH_AUGMENTATIONS` named in ``names``, in the registry's order."""
    for name, augmentation in PATCH_AUGMENTATIONS.items():
        if name in names:
            hr = augmentation.apply(hr, augmentation.draw(rng, hr.shape))
    return hr
