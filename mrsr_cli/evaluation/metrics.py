"""Image-quality figures: PSNR and 3-D SSIM inside a mask.

* **Data range** ``L`` = the 99.5th percentile of the reference inside the mask (robust to a
  few hot voxels; MRI has no fixed maximum).  Both metrics use it.
* **PSNR** = ``10 log10(L² / MSE)`` with the MSE over mask voxels, in dB.
* **SSIM** (Wang et al. 2004) in 3-D with a Gaussian window of σ = 1.5 voxels (truncated at
  3.5 σ, as scikit-image does), K1 = 0.01, K2 = 0.03, population (not sample) covariance;
  the SSIM map is averaged over mask voxels.
* The **head mask**, when none is given, is the reference thresholded at 5 % of its robust
  maximum, its largest connected component, holes filled slice-wise and in 3-D.

Example::

    mask = head_mask(ref)
    print(psnr(ref, test, mask), ssim(ref, test, mask))
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
K1, K2 = 0.01, 0.03


def data_range(reference: np.ndarray, mask: np.ndarray | None = None, percentile: float = 99.5) -> float:
    """Robust data range of the reference: its ``percentile`` inside the mask."""
    values = reference[mask] if mask is not None else reference
    rng = float(np.percentile(values, percentile)) if values.size else 0.0
    return rng if rng > 0 else float(np.abs(values).max() or 1.0)


def head_mask(reference: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Boolean head mask of a reference image (threshold, largest component, hole filling)."""
    ref = np.asarray(reference, dtype=np.float32)
    positive = ref[ref > 0]
    if positive.size == 0:
        return np.ones(ref.shape, dtype=bool)
    mask = ref > fraction * float(np.percentile(positive, 99.5))
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    mask = ndimage.binary_closing(mask, iterations=2)
    for axis in range(3):  # fill slice-wise: ventricles open to the edge of a 3-D crop
        mask = np.stack([ndimage.binary_fill_holes(s) for s in np.moveaxis(mask, axis, 0)], axis=axis)
    return ndimage.binary_fill_holes(mask)


def psnr(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None, drange: float | None = None) -> float:
    """PSNR in dB inside ``mask`` with the robust data range (see module docstring)."""
    ref = np.asarray(reference, dtype=np.float64)
    tst = np.asarray(test, dtype=np.float64)
    if mask is None:
        mask = np.ones(ref.shape, dtype=bool)
    if drange is None:
        drange = data_range(ref, mask)
    mse = float(np.mean((ref[mask] - tst[mask]) ** 2))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(drange**2 / mse))


def ssim_map(reference: np.ndarray, test: np.ndarray, drange: float) -> np.ndarray:
    """Voxel-wise 3-D SSIM (Gaussian window σ = 1.5 voxels, 'reflect' borders)."""
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(test, dtype=np.float64)

    def smooth(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    mx, my = smooth(x), smooth(y)
    vx = smooth(x * x) - mx * mx
    vy = smooth(y * y) - my * my
    cxy = smooth(x * y) - mx * my
    c1, c2 = (K1 * drange) ** 2, (K2 * drange) ** 2
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None, drange: float | None = None) -> float:
    """Mean 3-D SSIM over ``mask`` (whole image when ``None``)."""
    if drange is None:
        drange = data_range(np.asarray(reference), mask)
    smap = ssim_map(reference, test, drange)
    return float(smap[mask].mean() if mask is not None else smap.mean())


def compare(reference: np.ndarray, test: np.ndarray, mask: np.ndarray) -> dict:
    """PSNR, SSIM, MSE and the data range used, as a dict."""
    drange = data_range(reference, mask)
    return {
        "psnr": psnr(reference, test, mask, drange),
        "ssim": ssim(reference, test, mask, drange),
        "data_range": drange,
        "mask_voxels": int(mask.sum()),
    }


PSNR_LOSS_EPS = 1e-4  # normalised intensity²: keeps near-flat patches from dominating the psnr loss


def patch_psnr_gain(pred, target, ilr):
    """Torch tensors ``(B, 1, ...)``: the mean over patches of ``10·log10((MSE(pred) + ε) / (MSE(ilr) + ε))``,
    the (negative) PSNR gain of ``pred`` over ``ilr`` in dB, ε = :data:`PSNR_LOSS_EPS`; the loss
    that training (``psnr``) and ``upscale --adapt`` minimise."""
    import torch

    err = ((pred.float() - target) ** 2).flatten(1).mean(1)
    base = ((ilr.float() - target) ** 2).flatten(1).mean(1)
    return 10 * (torch.log10(err + PSNR_LOSS_EPS) - torch.log10(base + PSNR_LOSS_EPS)).mean()
