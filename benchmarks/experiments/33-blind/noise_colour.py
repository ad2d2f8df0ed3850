#!/usr/bin/env python3
"""Round 33, step 14: the input's PSF from the colour of its background noise (issue 33).

For each cell, the LR input is made noiseless, with Rician noise after the degradation (`mrsr
simulate`'s convention) or with complex noise before it (a scanner's: the noise enters in
k-space, ahead of any filter). The detector (`mrsr_cli.degrade.noise_colour`) reads the
background; where it finds white noise, the policy upscales as told `--input-psf kspace`. Scores
the default command and the policy against spline. The rule is in NOTES.md §14, fixed before the
run.

Usage: python benchmarks/experiments/33-blind/noise_colour.py [VOLUME]
"""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
from mrsr_cli.data.geometry import Grid, resized_grid  # noqa: E402
from mrsr_cli.degrade.noise_colour import background_noise  # noqa: E402
from mrsr_cli.degrade.simulate import ACQUISITIONS, robust_max, simulate_lowres  # noqa: E402
from mrsr_cli.evaluation.metrics import head_mask, psnr  # noqa: E402
from select_code import VALIDATION, write_results  # noqa: E402

NOISE = 0.02
# label, factor, simulate keywords (linear degradations only: the noise-before path needs it)
DEGRADATIONS = [("gaussian", (2, 2, 2), {}), ("gaussian 0.5", (2, 2, 2), {"fwhm_scale": 0.5}),
                ("gaussian 1.5", (2, 2, 2), {"fwhm_scale": 1.5}), ("kspace", (2, 2, 2), {"acquisition": "kspace"}),
                ("kspace hann", (2, 2, 2), {"acquisition": "kspace", "window": "hann"}),
                ("kspace tukey", (2, 2, 2), {"acquisition": "kspace", "window": "tukey"}),
                ("kspace pf 5/8", (2, 2, 2), {"acquisition": "kspace", "partial_fourier": 0.625}),
                ("gaussian 223", (2, 2, 3), {}), ("kspace 223", (2, 2, 3), {"acquisition": "kspace"})]


def lowres(hr: np.ndarray, grid: Grid, factor, kw: dict, noise: str) -> tuple[np.ndarray, Grid]:
    """The LR data of one cell: ``noise`` none, after (Rician, simulate's) or before (complex, in k-space)."""
    kw = dict(kw)
    scale = kw.pop("fwhm_scale", None)
    if scale is not None:
        kw["fwhm"] = tuple(scale * f * v for f, v in zip(factor, grid.voxel_size))
    if noise != "before":
        lr, lr_grid, _ = simulate_lowres(hr, grid, factor=factor, noise=NOISE if noise == "after" else 0.0, seed=0, **kw)
        return lr, lr_grid
    lr_vox = tuple(f * v for f, v in zip(factor, grid.voxel_size))
    lr_grid = resized_grid(grid, lr_vox)
    acquisition = kw.get("acquisition", "psf")
    model = ACQUISITIONS[acquisition].model(grid, lr_grid, kw.get("fwhm", lr_vox), "gaussian", kw.get("window"),
                                            kw.get("partial_fourier", 1.0))
    rng = np.random.default_rng(0)
    real, imag = (rng.standard_normal(hr.shape, dtype=np.float32) for _ in range(2))
    unit = float(np.std(np.real(model.forward(real))))  # the LR noise of unit HR noise
    sigma = NOISE * robust_max(hr) / unit
    return np.abs(model.forward(hr + sigma * real) + 1j * model.forward(sigma * imag)).astype(np.float32), lr_grid


def load_truth(volume: str) -> tuple[np.ndarray, Grid, nib.Nifti1Image, np.ndarray]:
    """``(truth, its grid, it as an image, its head mask)`` of the HR volume at ``volume``."""
    img = nib.load(volume)
    truth = np.asarray(img.dataobj, dtype=np.float32)
    return truth, Grid(truth.shape, img.affine), nib.Nifti1Image(truth, img.affine), head_mask(truth)


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    truth, grid, hr, mask = load_truth(volume)
    table = {}
    for label, factor, kw in DEGRADATIONS:
        for noise in ("none", "after", "before"):
            data, lr_grid = lowres(truth, grid, factor, kw, noise)
            lr = nib.Nifti1Image(data, lr_grid.affine)
            base = psnr(truth, mrsr_cli.upscale(lr, like=hr, method="spline").get_fdata(dtype=np.float32), mask)
            colour = background_noise(data)
            row = {"spline": round(base, 2), "evidence": None if colour is None else colour.record()}
            row["default"] = round(psnr(truth, mrsr_cli.upscale(lr, like=hr).get_fdata(dtype=np.float32), mask) - base, 2)
            fires = colour is not None and colour.white
            row["policy"] = (round(psnr(truth, mrsr_cli.upscale(lr, like=hr, input_psf="kspace").get_fdata(dtype=np.float32),
                                       mask) - base, 2) if fires else row["default"])
            row["fires"] = fires
            table[f"{label} noise {noise}"] = row
            print(f"{label} noise {noise}", row, flush=True)
    changed = [r for r in table.values() if r["fires"]]
    summary = {
        "a: silent or coloured on every noiseless cell": all(not r["fires"] for k, r in table.items() if k.endswith("none")),
        "b: fires on every noisy k-space cell without a window": all(
            table[f"{d} noise {n}"]["fires"] for d in ("kspace", "kspace 223") for n in ("after", "before")),
        "c: no changed cell below spline by more than 0.1 dB": all(r["policy"] >= -0.1 for r in changed),
        "d: mean change over changed cells": round(float(np.mean([r["policy"] - r["default"] for r in changed])), 3)
        if changed else None,
        "changed cells": len(changed),
    }
    summary["rule met"] = bool(all(v for k, v in summary.items() if k[:2] in ("a:", "b:", "c:"))
                               and (summary["d: mean change over changed cells"] or -1) >= 0)
    write_results("noise_colour", volume, table, summary)


if __name__ == "__main__":
    main()
