#!/usr/bin/env python3
"""Fit the PSF estimator (mrsr_cli/degrade/estimate.py) and score it on held-out data (issue 33).

Training rows: the default model's training templates only (ICBM 2009a and the left half of
MNI152NLin6Asym), each degraded DRAWS times by `mrsr simulate`'s code with a random factor, a
random acquisition (a Gaussian or box PSF of 0.5-1.5 LR voxels, or k-space truncation with
window none, Tukey, Hamming or Hann), Rician noise of 0-5 % half the time, a random gamma and a
random crop; one row per voxel axis, the target the Gaussian-equivalent FWHM in LR voxels
(never below one HR voxel, as the model's PSF channels read it) and whether it is k-space.
Validation: the right half of MNI152NLin6Asym, drawn alike.  Test (never fitted on): Colin27
and the four package brains, each under the same draws.

Usage: python benchmarks/data.py && python benchmarks/split_hemispheres.py .data/mni152nlin6asym_t1_1mm.nii.gz
       python benchmarks/experiments/33-blind/psf_estimator.py
Writes results/psf_estimator_coefficients.json and results/psf_estimator.json (beside this file).
"""

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]
from _common import DATA, machine  # noqa: E402

from estimate import COEFFICIENTS, background_noise_sigma, estimate_psf, fit, spectral_features  # noqa: E402
from mrsr_cli.data.geometry import Grid  # noqa: E402
from mrsr_cli.degrade.kspace import equivalent_gaussian_fwhm  # noqa: E402
from mrsr_cli.degrade.psf import PSF_SHAPES  # noqa: E402
from mrsr_cli.degrade.simulate import simulate_lowres  # noqa: E402

FACTORS = [(2, 2, 2), (2, 2, 2), (3, 3, 3), (2, 2, 3), (1, 1, 4), (1, 1, 5), (1.5, 1.5, 1.5), (2, 2.5, 2)]
WINDOWS = ("none", "tukey", "hamming", "hann")
TRAIN = ["icbm152_2009a_t1.nii.gz", "mni152nlin6asym_t1_1mm_left.nii.gz"]
VALIDATION = ["mni152nlin6asym_t1_1mm_right.nii.gz"]
TEST = ["colin27_ch2.nii.gz", "deepmriprep_t1_05mm.nii.gz", "pydeface_mean_head_t1.nii.gz", "sri24_t1_1mm.nii",
        "robex_atlas_t1.nii.gz"]
DRAWS = 40


def load(name: str):
    img = nib.load(str(DATA / name))
    data = np.asarray(img.dataobj, dtype=np.float32).reshape(img.shape[:3])
    return np.clip(data, 0, None), Grid(data.shape, img.affine)


def draw(rng: np.random.Generator) -> dict:
    factor = np.asarray(FACTORS[rng.integers(len(FACTORS))], dtype=float)[rng.permutation(3)]
    kind = "kspace" if rng.random() < 0.5 else "psf"
    return {"factor": factor, "kind": kind, "window": WINDOWS[rng.integers(len(WINDOWS))],
            "shape": "box" if rng.random() < 0.3 else "gaussian", "scale": float(rng.uniform(0.5, 1.5)),
            "noise": float(rng.uniform(0.005, 0.05)) if rng.random() < 0.5 else 0.0,
            "gamma": float(np.exp(rng.normal(0, 0.2))), "crop": rng.uniform(0.6, 1.0, 3), "seed": int(rng.integers(1 << 30))}


def rows(data: np.ndarray, grid: Grid, d: dict, rng: np.random.Generator):
    """(features per axis, FWHM target per axis, k-space 0/1, the LR volume)."""
    size = np.maximum((np.asarray(data.shape) * d["crop"]).astype(int), 32)
    start = [int(rng.integers(0, max(n - s, 0) + 1)) for n, s in zip(data.shape, size)]
    box = tuple(slice(a, a + s) for a, s in zip(start, size))
    hr = data[box] / max(float(np.percentile(data[box][data[box] > 0], 99.5)), 1e-6)
    hr = np.clip(hr, 0, None) ** d["gamma"]
    hr_grid = Grid(hr.shape, grid.affine)
    factor = d["factor"]
    if d["kind"] == "kspace":
        lr, _, _ = simulate_lowres(hr, hr_grid, factor=factor, acquisition="kspace", window=d["window"],
                                   noise=d["noise"], seed=d["seed"])
        equivalent = np.full(3, equivalent_gaussian_fwhm(d["window"]))
    else:
        vox = np.asarray(hr_grid.voxel_size) * factor
        lr, _, _ = simulate_lowres(hr, hr_grid, factor=factor, fwhm=vox * d["scale"], psf=d["shape"],
                                   noise=d["noise"], seed=d["seed"])
        equivalent = np.full(3, d["scale"] * PSF_SHAPES[d["shape"]].gaussian_fwhm)
    target = np.maximum(equivalent, 1.0 / factor)
    sigma = background_noise_sigma(lr)
    feats = [spectral_features(lr, axis, sigma) for axis in range(3)]
    return feats, target, d["kind"] == "kspace", lr


def collect(names, draws, seed):
    rng = np.random.default_rng(seed)
    features, targets, kinds, cases = [], [], [], []
    for name in names:
        data, grid = load(name)
        for _ in range(draws):
            d = draw(rng)
            feats, target, kspace, lr = rows(data, grid, d, rng)
            features += feats
            targets += list(target)
            kinds += [float(kspace)] * 3
            cases.append((name, d, target, kspace, lr))
        print(f"{name}: {draws} draws", file=sys.stderr, flush=True)
    return np.asarray(features), np.asarray(targets), np.asarray(kinds), cases


def score(cases, coefficients) -> dict:
    """FWHM error per axis and family accuracy per volume (the estimator as upscale runs it)."""
    errors, correct, confident, confident_right = [], 0, 0, 0
    per_family = {}
    for name, d, target, kspace, lr in cases:
        est = estimate_psf(lr, coefficients)
        err = [abs(e - t) for e, t in zip(est.fwhm, target) if e is not None]
        errors += err
        right = (est.family == "kspace") == kspace
        correct += right
        confident += est.confident
        confident_right += est.confident and right
        label = f"kspace/{d['window']}" if kspace else f"{d['shape']}"
        per_family.setdefault(label, []).append((float(np.mean(err)), right))
    return {"fwhm_mae": float(np.mean(errors)), "fwhm_p90": float(np.percentile(errors, 90)),
            "family_accuracy": correct / len(cases), "confident_fraction": confident / len(cases),
            "confident_accuracy": confident_right / max(confident, 1),
            "per_family": {k: {"n": len(v), "fwhm_mae": round(float(np.mean([e for e, _ in v])), 3),
                               "family_accuracy": round(float(np.mean([r for _, r in v])), 3)} for k, v in sorted(per_family.items())}}


def main() -> None:
    features, targets, kinds, _ = collect(TRAIN, DRAWS, seed=0)
    coefficients = fit(features, targets, kinds)
    coefficients["trained_on"] = TRAIN
    COEFFICIENTS.parent.mkdir(exist_ok=True)
    COEFFICIENTS.write_text(json.dumps(coefficients, indent=1) + "\n")
    results = {"machine": machine(), "train_rows": int(len(targets))}
    for label, names, seed in (("validation", VALIDATION, 1), ("test", TEST, 2)):
        _, _, _, cases = collect(names, DRAWS // 2 if label == "validation" else 12, seed)
        results[label] = score(cases, coefficients)
        print(label, json.dumps(results[label], indent=1), flush=True)
    (HERE / "results" / "psf_estimator.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
