"""Shared fixtures: small synthetic heads, oblique/radiological affines, a CLI runner."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, cy, cz, sx, sy, sz = np.cos(ax), np.cos(ay), np.cos(az), np.sin(ax), np.sin(ay), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def make_affine(voxel=(1.0, 1.0, 1.0), oblique=False, radiological=False, origin=(-20.0, -25.0, -15.0)) -> np.ndarray:
    affine = np.eye(4)
    linear = np.diag(voxel).astype(float)
    if radiological:
        linear[:, 0] *= -1
    if oblique:
        linear = rotation(0.2, -0.15, 0.3) @ linear
    affine[:3, :3] = linear
    affine[:3, 3] = origin
    return affine


def phantom(shape=(40, 44, 36), seed=0) -> np.ndarray:
    """A head-like image: ellipsoid 'skull', brighter 'white matter', dark blobs, some texture."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g * g for g in grids))
    img = np.where(r < 0.85, 60.0, 0.0) + np.where(r < 0.6, 40.0, 0.0)
    for _ in range(6):
        c = rng.uniform(-0.4, 0.4, 3)
        d = np.sqrt(sum((g - ci) ** 2 for g, ci in zip(grids, c)))
        img -= np.where(d < rng.uniform(0.08, 0.18), 35.0, 0.0) * (r < 0.6)
    img += 8 * np.sin(9 * grids[0]) * np.cos(7 * grids[1]) * (r < 0.85)
    return np.clip(img, 0, None).astype(np.float32)


def save_nifti(path, data, affine, dtype=np.float32, qcode=1, scode=1) -> Path:
    img = nib.Nifti1Image(np.asarray(data).astype(dtype), affine)
    img.header.set_qform(affine, code=qcode)
    img.header.set_sform(affine, code=scode)
    nib.save(img, str(path))
    return Path(path)


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_cli(*args, env=None, check=None) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess (real exit codes, real stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "mrsr_cli.app.cli", *map(str, args)], capture_output=True, text=True, env=full_env)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


def train_small(tmp_path, vol, out, *extra, check=None) -> subprocess.CompletedProcess:
    """``mrsr train`` of a 3-layer, 6-filter ReCNN on ``vol`` into ``tmp_path / out``: seconds on one
    thread, fp32 and seeded, so runs are reproducible; ``extra`` flags are appended."""
    return run_cli("train", vol, "-o", tmp_path / out, "--layers", "3", "--filters", "6", "--patch", "12",
                   "--batch", "4", "--patches-per-epoch", "16", "--seed", "5", "--precision", "fp32", "--threads", "1",
                   "--scales", "2,2,2", *extra, check=check)


@pytest.fixture
def train_volume(tmp_path) -> Path:
    """A 36³ phantom at 1 mm to train on."""
    return save_nifti(tmp_path / "train.nii.gz", phantom((36, 36, 36), seed=4), make_affine())


@pytest.fixture
def head(tmp_path) -> Path:
    return save_nifti(tmp_path / "head.nii.gz", phantom(), make_affine())


@pytest.fixture
def oblique_head(tmp_path) -> Path:
    return save_nifti(tmp_path / "oblique.nii.gz", phantom(), make_affine((1.0, 1.2, 0.9), oblique=True, radiological=True))
