#!/usr/bin/env python3
"""Round 33, step 14, a follow-up measurement: how the noise-colour cue reads pure noise behind each
reconstruction filter (no brain, no haze in the air: what a scanner's empty air would hold).

Complex white noise on a 96³ grid is filtered in k-space by each window (over the whole band, as
a scanner's filter after the truncation) or by a Gaussian of the given FWHM in voxels; the
magnitude (Rayleigh, as in the air) is detrended as `mrsr_cli.degrade.noise_colour` does, and its
lag-1 correlation is printed with the noise power in five bands of the Nyquist frequency
(relative to the top band).

Usage: python benchmarks/experiments/33-blind/noise_filters.py
"""

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from mrsr_cli.degrade.kspace import WINDOWS
from mrsr_cli.degrade.noise_colour import DETREND, WHITE_LIMIT

N = 96
BANDS = [(0.05, 0.15), (0.15, 0.25), (0.25, 0.35), (0.35, 0.45), (0.45, 0.51)]  # cycles per voxel


def gaussian(freq: np.ndarray, fwhm: float) -> np.ndarray:
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return np.exp(-2 * (np.pi * freq * sigma) ** 2)


def main() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((N,) * 3) + 1j * rng.standard_normal((N,) * 3)
    freq = np.fft.fftfreq(N)
    filters = {"none (white)": np.ones(N), **{w: WINDOWS[w](np.abs(freq) / 0.5) for w in ("tukey", "hamming", "hann")},
               **{f"gaussian FWHM {s:g}": gaussian(freq, s) for s in (0.5, 1.0, 1.5)}}
    table = {}
    for name, line in filters.items():
        transfer = line[:, None, None] * line[None, :, None] * line[None, None, :]
        magnitude = np.abs(np.fft.ifftn(np.fft.fftn(noise) * transfer))
        residual = magnitude - ndimage.uniform_filter(magnitude, DETREND)
        lag1 = float((residual[:-1] * residual[1:]).mean() / (residual * residual).mean())
        power = (np.abs(np.fft.fft(residual, axis=0)) ** 2).mean(axis=(1, 2))
        band = [float(power[(np.abs(freq) >= a) & (np.abs(freq) < b)].mean()) for a, b in BANDS]
        table[name] = {"lag1": round(lag1, 3), "white": lag1 < WHITE_LIMIT,
                       "power by band / top band": [round(v / band[-1], 2) for v in band]}
        print(name, table[name])
    out = Path(__file__).with_name("results") / "noise_filters.json"
    out.write_text(json.dumps(table, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
