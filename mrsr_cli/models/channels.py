"""The channel contract between images and networks, shared by training and inference.

A network's input channels, in order (:mod:`mrsr_cli.models.recnn`):

1. the spline-interpolated low-resolution image (ILR, Pham's ``Z``) on the target grid,
   divided by the model's normalisation scale (:func:`normalization_scale`: the 99.5th
   percentile of the input's non-zero voxels, the ``normalization`` entry of the model's
   metadata);
2. ``factor_channels`` constant maps of the per-axis upscaling factor, ``log2`` of it
   (:func:`factor_encoding`);
3. ``voxel_channels`` constant maps of the output (target grid) voxel size, ``log2`` of it in
   mm along each array axis (:func:`voxel_size_encoding`): the physical scale of the anatomy;
4. ``psf_channels`` constant maps of the input's point-spread function along each array axis
   (:func:`psf_encoding`): its Gaussian-equivalent FWHM in input (LR) voxels, minus 1, so
   ``mrsr simulate``'s default PSF (a Gaussian of FWHM one LR voxel) reads 0;
5. for guided models, the registered reference of another contrast, encoded as the model's
   ``reference_encoding`` says (:func:`encode_reference`).

Readers (:class:`ArrayField`, :class:`ConstantField`, the resamplers of
:mod:`mrsr_cli.data.interpolate`) return any box of the target grid, zeros outside it, so the tiled
engine never holds the interpolated volume whole.

Example::

    >>> factor_encoding((2, 2, 4))
    [1.0, 1.0, 2.0]
    >>> voxel_size_encoding((0.5, 1.0, 2.0))
    [-1.0, 0.0, 1.0]
    >>> psf_encoding((1.0, 0.5, 1.0), ("gaussian", "gaussian", "box"), (2, 4, 2))
    [0.0, -0.5, -0.3202]
    >>> ConstantField((4, 4, 4), 1.5).read((slice(2, 6), slice(0, 1), slice(0, 1))).ravel().tolist()
    [1.5, 1.5, 0.0, 0.0]
"""

from __future__ import annotations

import logging

import numpy as np

from mrsr_cli.degrade.psf import PSF_SHAPES
from mrsr_cli.errors import MrsrError

log = logging.getLogger("mrsr")

NORMALIZATION_PERCENTILE = 99.5
# How a guided model reads its reference (model parameter ``reference_encoding``).
REFERENCE_ENCODINGS = ("intensity", "edges")
EDGE_SIGMA_VOXELS = 0.5  # Gaussian derivative scale: below the 1-voxel detail guidance is for
EDGE_GAIN = 2.0  # a unit step gives ~0.86 on the two voxels beside it: inputs of order 1


def normalization_scale(data: np.ndarray) -> float:
    """Intensity scale of a volume: 99.5th percentile of its non-zero voxels."""
    from mrsr_cli.degrade.simulate import robust_max

    return robust_max(data, NORMALIZATION_PERCENTILE)


def model_normalization_scale(meta: dict, data: np.ndarray) -> float:
    """The intensity scale a model's metadata asks for (its ``normalization`` entry).

    Only ``{"method": "percentile", "percentile": P}`` exists today: the P-th percentile of the
    non-zero voxels (an empty entry means the 99.5th).  Anything else is refused rather than guessed.
    """
    from mrsr_cli.degrade.simulate import robust_max

    norm = meta.get("normalization") or {"method": "percentile"}
    if norm.get("method") != "percentile":
        raise MrsrError(f"model {meta.get('name', '?')}: unsupported normalization {norm!r}")
    return robust_max(data, float(norm.get("percentile", NORMALIZATION_PERCENTILE)))


def allowed_flips(meta: dict) -> bool:
    """Whether a model may be run on mirrored inputs (the flip self-ensemble): its metadata says
    ``"flip_invariant"``, else its training record lists the ``flip`` augmentation (a model with
    no training record, e.g. written by hand, is allowed)."""
    if "flip_invariant" in meta:
        return bool(meta["flip_invariant"])
    training = meta.get("training")
    return not training or "flip" in training.get("augment", [])


def box_overlap(box, shape) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """``(inside, within_box)``: the part of ``box`` (slices that may reach beyond a volume of
    ``shape``) inside the volume, in volume indices and in box-relative indices."""
    inside = tuple(slice(max(0, s.start), min(n, s.stop)) for s, n in zip(box, shape))
    return inside, tuple(slice(a.start - s.start, a.stop - s.start) for a, s in zip(inside, box))


class ArrayField:
    """An array on the target grid, read box by box like a resampler (zeros outside)."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def read(self, box) -> np.ndarray:
        out = np.zeros(tuple(s.stop - s.start for s in box), dtype=np.float32)
        inside, within_box = box_overlap(box, self.array.shape)
        out[within_box] = self.array[inside]
        return out

    def nonzero_box(self, tolerance: float = 0.0) -> tuple[slice, ...]:
        """The bounding box of the voxels above ``tolerance`` × the array's largest magnitude (empty if none)."""
        from mrsr_cli.data.geometry import bounding_box

        magnitude = np.abs(self.array)
        return bounding_box(magnitude > tolerance * magnitude.max() if tolerance else self.array != 0)


def encode_reference(reference: np.ndarray, encoding: str = "intensity") -> np.ndarray:
    """The channel a guided model reads from a reference on its target grid (intensities
    normalised by :func:`normalization_scale`, shape in voxels of that grid).

    ``intensity``: the reference itself (Pham §5: concatenation).  ``edges``: the gradient
    magnitude of the reference, Gaussian derivative of σ = ``EDGE_SIGMA_VOXELS`` voxels, times
    ``EDGE_GAIN``, in units of normalised intensity per voxel: where tissue boundaries are,
    whatever the contrast — an inverted or non-monotone remapping of the anatomy (T2, FLAIR)
    has the same edges, so the network need not learn the contrast.  Flip-invariant, like
    the self-ensemble needs.

    >>> step = np.pad(np.ones((4, 8, 8), np.float32), ((4, 0), (0, 0), (0, 0)))  # 0 then 1 along axis 0
    >>> encode_reference(step, "edges")[:, 4, 4].round(2)
    array([0.  , 0.  , 0.  , 0.86, 0.86, 0.  , 0.  , 0.  ], dtype=float32)
    """
    if encoding == "intensity":
        return reference
    if encoding != "edges":
        raise MrsrError(f"unknown reference encoding {encoding!r} (known: {', '.join(REFERENCE_ENCODINGS)})")
    from scipy import ndimage

    edges = ndimage.gaussian_gradient_magnitude(np.asarray(reference, np.float32), EDGE_SIGMA_VOXELS, mode="nearest")
    return (edges * EDGE_GAIN).astype(np.float32)


class ConstantField:
    """A constant image on a grid of ``shape``, read box by box like a resampler (zeros outside,
    as the network's zero padding sees a volume border)."""

    constant = True  # the same value in the background as in the head: background skipping ignores it

    def __init__(self, shape, value: float):
        self.shape, self.value = tuple(shape), float(value)

    def read(self, box) -> np.ndarray:
        out = np.zeros(tuple(s.stop - s.start for s in box), dtype=np.float32)
        out[box_overlap(box, self.shape)[1]] = self.value
        return out


def factor_encoding(factor) -> list[float]:
    """The values of a model's factor channels: ``log2`` of the per-axis upscaling factor (≥ 1)."""
    return [float(np.log2(max(float(f), 1.0))) for f in factor]


def voxel_size_encoding(voxel_size) -> list[float]:
    """The values of a model's voxel-size channels: ``log2`` of the output voxel size in mm per
    array axis (1 mm → 0, 0.5 mm → −1)."""
    return [float(np.log2(float(v))) for v in voxel_size]


def psf_encoding(fwhm_lr_voxels, shapes, factor) -> list[float]:
    """The values of a model's PSF channels, per array axis: the input PSF's FWHM in input (LR)
    voxels (``fwhm_lr_voxels``; ``shapes`` names of :data:`mrsr_cli.degrade.psf.PSF_SHAPES`), as the FWHM of the Gaussian
    of equal variance, never below one output voxel (``1 / factor`` LR voxels: a narrower PSF
    blurs nothing the output grid can show), minus 1.  ``mrsr simulate``'s default, a Gaussian
    of one LR voxel, is 0; a box of one LR voxel (a block mean) −0.32; plain subsampling at x2,
    −0.5.  Rounded to 4 decimals."""
    values = []
    for width, shape, f in zip(fwhm_lr_voxels, shapes, factor):
        equivalent = float(width) * PSF_SHAPES[shape].gaussian_fwhm
        values.append(round(max(equivalent, 1.0 / max(float(f), 1.0)) - 1.0, 4))
    return values


# A spline weight below this (relative) counts as background (SeparableResampler.nonzero_box): the
# interpolated image outside the foreground box is then under 2e-4 of its maximum, not exactly 0, and the
# output there differs from the whole-volume pass by less than 1e-3 of the output's range (the
# tests bound it); exact zeros would add the prefilter's whole tail, 12 source voxels per side.
BACKGROUND_WEIGHT = 1e-4


def foreground_box(sources, shape) -> tuple[slice, ...] | None:
    """The box of the target grid outside which every channel holds its background value: 0 for the
    image channels (the union of their :meth:`nonzero_box`; resampled images to within
    ``BACKGROUND_WEIGHT``), any value for constant channels.  ``None`` when a channel cannot say
    (then nothing is skipped as background)."""
    boxes = []
    for source in sources:
        if getattr(source, "constant", False):
            continue
        if not hasattr(source, "nonzero_box"):
            return None
        box = source.nonzero_box(BACKGROUND_WEIGHT)
        if all(s.stop > s.start for s in box):
            boxes.append(box)
    if not boxes:
        return (slice(0, 0),) * len(shape)
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(len(shape)))


def network_inputs(params: dict, shape, image, factor, reference=None, voxel_size=None, psf=None) -> list:
    """Box readers in a model's channel order (:mod:`mrsr_cli.models.recnn`): the spline-
    interpolated image, the factor maps when the model takes them, the voxel-size maps
    (``voxel_size``: the target grid's voxel edges in mm, along its array axes) when it takes
    them, the PSF maps (``psf``: :func:`psf_encoding` values per array axis; default 0, the PSF
    of ``mrsr simulate``) when it takes them, the reference if any."""
    sources = [image]
    if params.get("factor_channels", 0):
        sources += [ConstantField(shape, v) for v in factor_encoding(factor)]
    if params.get("voxel_channels", 0):
        if voxel_size is None:
            raise MrsrError("this model reads the output voxel size, and none was given")
        sources += [ConstantField(shape, v) for v in voxel_size_encoding(voxel_size)]
    if params.get("psf_channels", 0):
        sources += [ConstantField(shape, v) for v in (psf if psf is not None else (0.0, 0.0, 0.0))]
    if reference is not None:
        sources.append(reference)
    return sources


def model_channels(meta: dict) -> tuple[int, int]:
    """``(factor channels, reference channels)`` of a model from its metadata."""
    params = meta["params"]
    n_factor = int(params.get("factor_channels", 0))
    extra = int(params.get("voxel_channels", 0)) + int(params.get("psf_channels", 0))
    return n_factor, int(params.get("in_channels", 1)) - 1 - n_factor - extra
