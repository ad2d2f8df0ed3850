#!/usr/bin/env python3
"""Round 33, step 18: synthetic sharp head crops for a k-space network (issue 33, NOTES.md §18).

Templates are averages, so their tissue boundaries are soft; a single subject's are sharp at 1 mm,
and a k-space truncation of a sharp boundary rings (Gibbs). These volumes give a network sharp
boundaries of brain-like shapes: the MNI ICBM152 2009a GM and WM maps (training data already),
randomly deformed and sampled at 0.5 mm, with boundary detail at the 1 mm scale added, cut into
hard labels (WM, GM, CSF inside the skull; the template's own intensity outside), each label given
an intensity (T1-like in most volumes, random in the rest) with a smooth variation and a fine
texture, then reduced to 1 mm by k-space truncation (a 1 mm scanner's view of a sharp head;
magnitude). Each volume is a 112 mm cube at 1 mm.

Usage: python benchmarks/experiments/33-blind/synth_sharp.py OUT_DIR COUNT [FIRST_SEED]
"""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[3]
SOURCE = {name: ROOT / ".data" / f"icbm152_2009a_{name}.nii.gz" for name in ("t1", "gm", "wm")}
SIDE_MM = 112  # the crop, mm (1 mm output voxels)
FINE = 2  # sampled at 1/FINE mm, then truncated in k-space to 1 mm
T1_LIKE_FRACTION = 0.7


def load_sources() -> tuple[dict, np.ndarray]:
    maps = {k: np.asarray(nib.load(p).dataobj, dtype=np.float32) for k, p in SOURCE.items()}
    maps["t1"] /= np.percentile(maps["t1"], 99.5)
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(maps["gm"] + maps["wm"] > 0.3, iterations=3))
    intracranial = ndimage.binary_dilation(brain, iterations=2)
    maps["csf"] = np.clip(ndimage.gaussian_filter(intracranial.astype(np.float32), 1.0) - maps["gm"] - maps["wm"], 0, 1)
    maps["inside"] = ndimage.gaussian_filter(intracranial.astype(np.float32), 1.0)
    return maps, np.argwhere(brain)


def sample_points(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """Source voxel coordinates of a FINE-times finer cube around ``centre``: a random rotation
    (±12°), scaling (0.9–1.1 per axis) and a smooth displacement (σ 2 mm, 16 mm correlation)."""
    n = SIDE_MM * FINE
    axis = (np.arange(n) - (n - 1) / 2) / FINE
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))  # (3, n, n, n) mm about the centre
    angles = np.deg2rad(rng.uniform(-12, 12, 3))
    rot = np.eye(3)
    for a, (i, j) in zip(angles, ((1, 2), (0, 2), (0, 1))):
        r = np.eye(3)
        r[i, i] = r[j, j] = np.cos(a)
        r[i, j], r[j, i] = -np.sin(a), np.sin(a)
        rot = rot @ r
    linear = rot * rng.uniform(0.9, 1.1, 3)
    coarse = rng.normal(0, 2.0, (3, 8, 8, 8))
    displacement = np.stack([ndimage.zoom(c, n / 8, order=3) for c in coarse])
    pts = np.einsum("ij,j...->i...", linear, grid) + displacement
    return pts + centre[:, None, None, None]


def boundary_detail(rng: np.random.Generator, shape) -> np.ndarray:
    """Smooth noise at the 1 mm scale (std 1): what shifts a sharp boundary by a voxel or so."""
    field = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), FINE * 1.0)
    return field / field.std()


def kspace_to_1mm(fine: np.ndarray) -> np.ndarray:
    """The magnitude of the central 1/FINE of ``fine``'s spectrum on each axis (a 1 mm acquisition)."""
    spectrum = np.fft.fftshift(np.fft.fftn(fine))
    n = fine.shape[0]
    m = n // FINE
    lo = (n - m) // 2
    centre = spectrum[lo:lo + m, lo:lo + m, lo:lo + m]
    return np.abs(np.fft.ifftn(np.fft.ifftshift(centre))).astype(np.float32) / FINE ** 3


def synthesize(maps: dict, brain_voxels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    centre = brain_voxels[rng.integers(len(brain_voxels))].astype(np.float64)
    pts = sample_points(rng, centre)
    at = {k: ndimage.map_coordinates(maps[k], pts, order=1, mode="constant", cval=0.0).astype(np.float32)
          for k in ("t1", "gm", "wm", "csf", "inside")}
    shape = at["t1"].shape
    detail = rng.uniform(0.08, 0.2)
    tissue = np.stack([at["csf"] + detail * boundary_detail(rng, shape),
                       at["gm"] + detail * boundary_detail(rng, shape),
                       at["wm"] + detail * boundary_detail(rng, shape)])
    label = np.argmax(tissue, axis=0)
    inside = at["inside"] > 0.5
    if rng.random() < T1_LIKE_FRACTION:  # CSF, GM, WM as a T1 weighting orders them
        means = np.array([rng.uniform(0.05, 0.3), rng.uniform(0.4, 0.62), rng.uniform(0.7, 0.95)])
    else:
        means = rng.uniform(0.05, 1.0, 3)
    # a smooth variation within each label (about 20 mm across) and a fine texture (0.6 mm)
    smooth = 1 + rng.uniform(0.03, 0.1) * ndimage.zoom(rng.normal(size=(6, 6, 6)), shape[0] / 6, order=3)
    texture = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), FINE * 0.6)
    texture *= rng.uniform(0.01, 0.03) / texture.std()
    head = at["t1"] * rng.uniform(0.8, 1.2)
    fine = np.where(inside, means[label] * smooth * (1 + texture), head).astype(np.float32)
    return kspace_to_1mm(fine)


def main(out_dir: str, count: int, first_seed: int = 0) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    maps, brain_voxels = load_sources()
    for seed in range(first_seed, first_seed + count):
        volume = synthesize(maps, brain_voxels, np.random.default_rng(1800 + seed))
        path = out / f"synth_sharp_{seed:02d}.nii.gz"
        nib.save(nib.Nifti1Image(volume, np.eye(4)), path)
        print(path, volume.shape, float(volume.max()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)
