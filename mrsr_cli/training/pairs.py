"""Training from real low-/high-resolution pairs, with no simulation (DNSP §IV-F: 3 T / 7 T).

Each pair is an LR scan and an HR scan of the same head.  :func:`prepare_pair` puts the LR
image on its HR image's grid the way ``mrsr upscale`` presents an input to a network (cubic
spline, world coordinates from both affines; with ``register`` after a rigid mutual-information
registration of LR onto HR, :func:`mrsr_cli.data.register.register_images`), then matches the two
images' intensities by a robust straight line LR ≈ a·HR + b fitted in the HR head mask
(Theil–Sen over a subsample, so a few mis-registered or saturated voxels do not tilt it), with
HR blurred to the LR's resolution first (Gaussian, FWHM = the LR voxel): fitted against the
sharp image, the blur's regression to the mean would flatten the slope.  The
HR target is mapped into the LR image's units (a·HR + b) and both are divided by the LR's
99.5th percentile: exactly how ``mrsr upscale`` normalises an input and scales the network's
output back, so a pair-trained model writes images in its input's intensity units.  Patches
are drawn only where both images have data: HR voxels whose centre falls inside the LR field of
view by at least half a patch.  The factor channels carry the pair's own factor (LR voxel /
HR voxel per axis, mm / mm).

Pairs come as ``LR:HR`` strings or as a TSV file (:func:`read_pairs`)::

    lr	hr
    sub-01_acq-lowres_T1w.nii.gz	sub-01_acq-highres_T1w.nii.gz

Example::

    pair = prepare_pair("sub-01_lr.nii.gz", "sub-01_hr.nii.gz", register=True)
    pair.ilr.shape == pair.hr.shape
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrsr_cli.errors import MrsrError, UsageError

COARSER_TOLERANCE = 1.01  # an LR axis counts as coarser when its voxel is 1 % larger than HR's
FIT_SAMPLES = 3000


def parse_pair(text: str) -> list[str]:
    """``"lr.nii.gz:hr.nii.gz"`` → ``["lr.nii.gz", "hr.nii.gz"]`` (a usage error otherwise)."""
    parts = str(text).split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise UsageError(f"a pair must be LR:HR (two NIfTI paths), got {text!r}")
    return [p.strip() for p in parts]


def read_pairs(values) -> list[list[str]]:
    """Pairs from ``LR:HR`` strings and ``.tsv`` files (columns ``lr`` and ``hr``; paths relative
    to the TSV's folder; a header row is optional).

    >>> read_pairs(["a_lr.nii.gz:a_hr.nii.gz"])
    [['a_lr.nii.gz', 'a_hr.nii.gz']]
    """
    pairs = []
    for value in values or []:
        value = str(value)
        if not value.endswith(".tsv"):
            pairs.append(parse_pair(value))
            continue
        path = Path(value)
        if not path.is_file():
            raise MrsrError(f"pairs file not found: {path}")
        from mrsr_cli.data.io import read_text

        with io.StringIO(read_text(path, "pairs file"), newline="") as fh:
            rows = [r for r in csv.reader(fh, delimiter="\t") if r and any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["lr", "hr"]:
            rows = rows[1:]
        if not rows:
            raise UsageError(f"pairs file {path} lists no pairs")
        for n, row in enumerate(rows, start=1):
            if len(row) != 2 or not all(c.strip() for c in row):
                raise UsageError(f"pairs file {path}, row {n}: needs 2 columns (lr, hr), got {len(row)}")
            pairs.append([str(path.parent / row[0].strip()), str(path.parent / row[1].strip())])
    return pairs


@dataclass
class PreparedPair:
    """A pair on the HR grid: ``ilr`` (LR, splined) and ``hr`` (intensity-matched to the LR), both
    in the LR's normalised units; ``overlap`` marks HR voxels inside the LR field of view; ``factor`` is LR
    voxel / HR voxel per HR array axis."""

    ilr: np.ndarray
    hr: np.ndarray
    overlap: np.ndarray
    factor: np.ndarray
    grid: object
    fit: dict
    lr_path: str
    hr_path: str


def check_pair(lr, hr, lr_path, hr_path) -> np.ndarray:
    """The pair's factor (LR voxel / HR voxel per HR axis), or a one-line error when the LR is
    not coarser than the HR or the two do not overlap in world space."""
    from mrsr_cli.data.geometry import scale_factor

    factor = np.asarray(scale_factor(lr.grid, hr.grid), dtype=np.float64)
    lr_vol = float(np.prod(lr.grid.voxel_size))
    hr_vol = float(np.prod(hr.grid.voxel_size))
    if factor.max() < COARSER_TOLERANCE or lr_vol < COARSER_TOLERANCE * hr_vol:
        raise MrsrError(f"pair {lr_path}:{hr_path}: the LR image ({_mm(lr.grid.voxel_size)} mm voxels) is not coarser "
                        f"than the HR image ({_mm(hr.grid.voxel_size)} mm)")
    if not _world_boxes_overlap(lr.grid, hr.grid):
        raise MrsrError(f"pair {lr_path}:{hr_path}: the images do not overlap in world space (check their affines)")
    return factor


def _mm(values) -> str:
    return "×".join(f"{v:g}" for v in np.round(values, 3))


def _world_boxes_overlap(a, b) -> bool:
    def box(grid):
        corners = np.array([[i, j, k, 1.0] for i in (-0.5, grid.shape[0] - 0.5) for j in (-0.5, grid.shape[1] - 0.5)
                            for k in (-0.5, grid.shape[2] - 0.5)])
        world = (grid.affine @ corners.T)[:3]
        return world.min(axis=1), world.max(axis=1)

    (alo, ahi), (blo, bhi) = box(a), box(b)
    return bool(np.all(np.minimum(ahi, bhi) > np.maximum(alo, blo)))


def inside_fov(source, target, margin_voxels: float = 0.0) -> np.ndarray:
    """Boolean map on ``target``'s grid: voxel centres inside ``source``'s field of view, at
    least ``margin_voxels`` (target voxels) from its border."""
    from mrsr_cli.data.geometry import voxel_mapping

    mapping = voxel_mapping(source, target)  # target index → source index
    idx = np.indices(target.shape, dtype=np.float32).reshape(3, -1)
    src = mapping[:3, :3] @ idx + mapping[:3, 3:4]
    step = np.linalg.norm(mapping[:3, :3], axis=0)  # source voxels per target voxel, per target axis
    margin = margin_voxels * float(step.max())
    ok = np.all((src >= -0.5 + margin) & (src <= np.asarray(source.shape)[:, None] - 0.5 - margin), axis=0)
    return ok.reshape(target.shape)


def robust_line(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """``(slope, intercept)`` of y ≈ slope·x + intercept, Theil–Sen over a random subsample."""
    from scipy.stats import theilslopes

    rng = np.random.default_rng(seed)
    take = rng.choice(x.size, size=min(FIT_SAMPLES, x.size), replace=False)
    res = theilslopes(y[take], x[take])
    return float(res[0]), float(res[1])


def prepare_pair(lr_path, hr_path, *, register: bool = False, patch: int = 25, threads: int | None = None) -> PreparedPair:
    """Load, check, (register,) spline onto the HR grid and intensity-match one pair."""
    from mrsr_cli.models.channels import normalization_scale
    from mrsr_cli.data.interpolate import resample
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.evaluation.metrics import head_mask

    lr = load_volume(lr_path, what="pair LR image")
    hr = load_volume(hr_path, what="pair HR image")
    factor = check_pair(lr, hr, lr_path, hr_path)
    info: dict = {}
    if register:
        from mrsr_cli.data.register import apply_transform, register_images

        tx, reg = register_images(lr, hr, "rigid", threads)
        ilr = apply_transform(lr, hr.grid, tx, order=3)
        info["registration"] = {k: reg[k] for k in ("RotationDegrees", "TranslationMm")}
    else:
        ilr = resample(lr.data, lr.grid, hr.grid, order=3)
    overlap = inside_fov(lr.grid, hr.grid)
    ilr = (ilr * overlap).astype(np.float32)
    region = head_mask(hr.data) & overlap
    if region.sum() < 100:
        raise MrsrError(f"pair {lr_path}:{hr_path}: fewer than 100 head voxels where the images overlap")
    from mrsr_cli.degrade.observation import apply_psf

    blurred = apply_psf(hr.data, hr.grid.voxel_size, factor * np.asarray(hr.grid.voxel_size))
    slope, intercept = robust_line(blurred[region], ilr[region])
    if not slope > 0:
        raise MrsrError(f"pair {lr_path}:{hr_path}: LR and HR intensities do not increase together (fitted slope "
                        f"{slope:.3g}); is it the same contrast?")
    scale = normalization_scale(ilr)
    hr_data = ((slope * hr.data + intercept) / scale).astype(np.float32)
    ilr = ilr / np.float32(scale)
    info.update({"slope": slope, "intercept": intercept})
    core = inside_fov(lr.grid, hr.grid, margin_voxels=patch / 2)
    return PreparedPair(ilr, hr_data.astype(np.float32), core, factor, hr.grid, info, str(lr_path), str(hr_path))
