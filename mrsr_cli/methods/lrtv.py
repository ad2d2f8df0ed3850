"""LRTV super-resolution (Shi et al., IEEE TMI 2015): low-rank + total-variation regularised
inversion of the observation model, the model-based baseline of both papers.

Minimises, over the image ``X`` on the target grid,

    ½‖A X − Y‖² + λ_rank Σₖ αₖ ‖X₍ₖ₎‖_* + λ_tv TV(X)

with ``A = D↓ B`` the observation model of the input's grid (:class:`~mrsr_cli.degrade.observation.ObservationModel`:
Gaussian PSF of FWHM = input voxel size, cubic-spline sampling), ``X₍ₖ₎`` the mode-k unfolding
of the volume (a tensor nuclear norm, αₖ = 1/3), and ``TV`` the isotropic total variation with
forward differences (smoothed by ``EPSILON``).  Solved by ADMM as in the authors' toolkit:
``X`` by gradient steps on the data, TV and coupling terms, each ``Mₖ`` by singular-value
thresholding of ``unfold_k(X + Uₖ)`` at ``αₖ λ_rank / ρ``, the scaled duals ``Uₖ += X − Mₖ``.
Initialised from the cubic spline.

Units: intensities are divided by the input's 99.5th percentile (of non-zero voxels) first, so
the λ's and ε are fractions of the bright-tissue intensity; TV uses voxel (not mm) differences.
The SVTs go through the k-th Gram matrix (n_k × n_k, at most a few hundred), so a whole 1 mm
brain costs seconds per iteration, and memory is about ``LRTV_VOLUMES`` float32 volumes of
the target grid.

Example::

    >>> import numpy as np
    >>> from mrsr_cli.data.io import Volume
    >>> lr = Volume(np.random.default_rng(0).random((10, 12, 8), dtype=np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    >>> from mrsr_cli.data.geometry import upscaled_grid
    >>> out, info = lrtv(lr, upscaled_grid(lr.grid, (2, 2, 2)), lrtv_iterations=2, progress=False)
    >>> out.shape, len(info["LRTVObjective"])
    ((20, 24, 16), 2)
"""

from __future__ import annotations

import logging
import time

import numpy as np

from mrsr_cli.degrade.observation import check_input_psf
from mrsr_cli.errors import MrsrError, UsageError

log = logging.getLogger("mrsr")

# The authors' toolkit: ρ 0.1, λ_rank 0.01, λ_tv 0.01, 20 iterations, tolerance 1e-5.  In these
# units (intensities / p99.5, TV summed over voxels) λ_tv 0.01 over-smooths: on a 96³ crop of the
# MNI152NLin6Asym training template at ×2 it scores 28.4 dB against spline's 34.8.  λ_tv 0.001
# with the toolkit's λ_rank scores +1.4 dB over spline there without noise and +0.7 dB with 2 %
# Rician noise, the best of the grid tried at that noise (docs/benchmarks.md, "LRTV").
ITERATIONS = 20
LAMBDA_TV = 0.001
LAMBDA_RANK = 0.01
RHO = 0.1
TOLERANCE = 1e-5  # stop when an iteration changes X by less than this (relative, L2)
X_STEPS = 1  # gradient steps per ADMM iteration
EPSILON = 1e-2  # TV smoothing, in normalised intensity per voxel
LRTV_VOLUMES = 12  # X, its gradient, TV temporaries, 3 Mₖ and 3 Uₖ (float32, target grid)
MAX_LRTV_ITERATIONS = 1000
MAX_LAMBDA = 10.0


def gradient_step(lambda_tv: float) -> float:
    """1 / L for the smooth part of the X update: ‖AᵀA‖ ≤ 1 (a normalised PSF and a sampling
    that takes about one HR voxel per LR voxel), the ADMM coupling 3ρ, and smoothed TV, whose
    gradient changes by at most 12 λ_tv / ε per unit change of X (6 neighbours, two sides)."""
    return 1.0 / (1.0 + 3 * RHO + 12 * lambda_tv / EPSILON)


def _tv_parts(x: np.ndarray, eps: float):
    """Forward differences along each axis (Neumann: 0 past the last voxel) and √(|∇x|² + ε²)."""
    grads = [np.diff(x, axis=a, append=np.take(x, [-1], axis=a)) for a in range(3)]
    return grads, np.sqrt(sum(g * g for g in grads) + np.float32(eps * eps))


def tv_value(x: np.ndarray, eps: float = EPSILON) -> float:
    """TV(x) = Σ √(|∇x|² + ε²), as :func:`tv_gradient` computes it, without the gradient."""
    return float(_tv_parts(x, eps)[1].sum(dtype=np.float64))


def tv_gradient(x: np.ndarray, eps: float = EPSILON) -> tuple[np.ndarray, float]:
    """``(∂TV/∂x, TV(x))`` for isotropic TV with forward differences and Neumann boundaries:
    TV = Σ √(|∇x|² + ε²), gradient = −div(∇x / √(|∇x|² + ε²))."""
    grads, norm = _tv_parts(x, eps)
    total = float(norm.sum(dtype=np.float64))
    out = np.zeros_like(x)
    for a, g in enumerate(grads):
        p = g / norm
        # adjoint of the forward difference: p[i-1] - p[i] (p[-1] = 0 before the first voxel; the last p is 0)
        out -= np.diff(p, axis=a, prepend=np.zeros_like(np.take(p, [0], axis=a)))
    return out, total


def unfold(x: np.ndarray, mode: int) -> np.ndarray:
    """Mode-k unfolding: ``(n_k, Π others)``."""
    return np.moveaxis(x, mode, 0).reshape(x.shape[mode], -1)


def fold(matrix: np.ndarray, mode: int, shape) -> np.ndarray:
    """Inverse of :func:`unfold`."""
    moved = (shape[mode],) + tuple(n for a, n in enumerate(shape) if a != mode)
    return np.ascontiguousarray(np.moveaxis(matrix.reshape(moved), 0, mode))


def singular_value_threshold(x: np.ndarray, mode: int, tau: float) -> tuple[np.ndarray, float]:
    """``fold(U · max(σ − τ, 0) · Vᵀ)`` of the mode-k unfolding, through its Gram matrix
    (``n_k × n_k``), and the nuclear norm of the result."""
    m = unfold(x, mode)
    gram = m.astype(np.float64) @ m.T.astype(np.float64)
    eigval, u = np.linalg.eigh(gram)
    sigma = np.sqrt(np.clip(eigval, 0, None))
    shrunk = np.clip(sigma - tau, 0, None)
    scale = np.divide(shrunk, sigma, out=np.zeros_like(sigma), where=sigma > 1e-12)
    projector = (u * scale) @ u.T  # U diag(max(σ−τ,0)/σ) Uᵀ: applied to M gives U max(σ−τ,0) Vᵀ
    return fold((projector.astype(np.float32) @ m), mode, x.shape), float(shrunk.sum())


def lrtv(volume, target, *, lrtv_iterations: int = ITERATIONS, lrtv_lambda_tv: float = LAMBDA_TV,
         lrtv_lambda_rank: float = LAMBDA_RANK, memory_limit: int | None = None, progress: bool = True,
         fwhm_mm=None, psf: str = "gaussian"):
    """LRTV super-resolution of ``volume`` (an :class:`~mrsr_cli.data.io.Volume`) onto ``target``, the
    input's PSF ``psf`` of ``fwhm_mm`` per input axis (default: its voxel size, as ``mrsr simulate``).

    Returns ``(float32 data on target, info)``; ``info["LRTVObjective"]`` holds the objective
    after each iteration (data, rank and TV terms, normalised units; the rank term is that of
    the thresholded Mₖ, equal to X's at convergence).
    """
    from mrsr_cli.models.channels import normalization_scale
    from mrsr_cli.console import ProgressBar
    from mrsr_cli.data.interpolate import resample
    from mrsr_cli.degrade.observation import input_model
    from mrsr_cli.budget import over_memory_limit

    if not 1 <= lrtv_iterations <= MAX_LRTV_ITERATIONS:
        raise UsageError(f"--lrtv-iterations must be in 1..{MAX_LRTV_ITERATIONS}, got {lrtv_iterations}")
    for flag, value in (("--lrtv-lambda-tv", lrtv_lambda_tv), ("--lrtv-lambda-rank", lrtv_lambda_rank)):
        if not 0 <= value <= MAX_LAMBDA:
            raise UsageError(f"{flag} must be in [0, {MAX_LAMBDA:g}] (a fraction of the intensity scale), got {value}")
    said = over_memory_limit("LRTV", LRTV_VOLUMES, target.shape, memory_limit)
    if said:
        raise MrsrError(said)
    try:
        model = input_model(target, volume.grid, fwhm_mm, psf)
    except MrsrError:
        raise MrsrError("LRTV needs an output grid whose voxel axes are parallel to the input's (use --factor or "
                        "--voxel-size)") from None
    scale = normalization_scale(volume.data)
    y = volume.data / scale
    x = resample(y, volume.grid, target, order=3)
    alphas = (1 / 3, 1 / 3, 1 / 3)
    step = gradient_step(lrtv_lambda_tv)
    ms = [x.copy() for _ in range(3)]
    us = [np.zeros_like(x) for _ in range(3)]
    objective = []
    started = time.perf_counter()
    bar = ProgressBar("LRTV", lrtv_iterations, enabled=progress)
    try:
        for _ in range(lrtv_iterations):
            for _ in range(X_STEPS):
                residual = model.forward(x) - y
                tv_grad, _ = tv_gradient(x)
                grad = model.adjoint(residual)
                grad += np.float32(lrtv_lambda_tv) * tv_grad
                for m, u in zip(ms, us):
                    grad += np.float32(RHO) * (x - m + u)
                x -= np.float32(step) * grad
                change = float(np.linalg.norm(grad)) * step / max(float(np.linalg.norm(x)), 1e-12)
            rank = 0.0
            for k, alpha in enumerate(alphas):
                ms[k], nuclear = singular_value_threshold(x + us[k], k, alpha * lrtv_lambda_rank / RHO)
                us[k] += x - ms[k]
                rank += alpha * nuclear
            residual = model.forward(x) - y
            tv = tv_value(x)
            objective.append(round(0.5 * float(np.vdot(residual, residual)) + lrtv_lambda_rank * rank + lrtv_lambda_tv * tv, 6))
            bar.advance()
            if change < TOLERANCE:
                break
    finally:
        bar.close()
    info = {
        "LRTVIterations": len(objective), "LRTVLambdaTV": lrtv_lambda_tv, "LRTVLambdaRank": lrtv_lambda_rank,
        "LRTVRho": RHO, "LRTVStep": round(step, 6), "LRTVEpsilon": EPSILON, "LRTVIntensityScale": round(float(scale), 6),
        "LRTVObjective": objective, "LRTVSeconds": round(time.perf_counter() - started, 2),
    }
    log.info("LRTV: %d iterations in %.1f s, objective %.4g -> %.4g", len(objective), info["LRTVSeconds"],
             objective[0], objective[-1])
    if volume.data.min() >= 0:  # magnitude images stay non-negative
        np.clip(x, 0, None, out=x)
    return x * np.float32(scale), info


# ----------------------------------------------------------------------------- the upscale method
def lrtv_method(volume, target, *, lrtv_iterations: int | None = None, lrtv_lambda_tv: float | None = None,
                lrtv_lambda_rank: float | None = None, input_fwhm=None, input_psf: str = "gaussian", engine=None):
    """Low-rank + total-variation inversion of the observation model (Shi et al. 2015;
    :func:`mrsr_cli.methods.lrtv.lrtv`, whose defaults apply to the options left ``None``), whose PSF is
    ``input_psf`` of ``input_fwhm`` mm per input axis (default: the input voxel size); ``engine``
    gives the memory limit and whether to show progress."""
    check_input_psf(input_psf, input_fwhm, volume.grid)
    options = {k: v for k, v in (("lrtv_iterations", lrtv_iterations), ("lrtv_lambda_tv", lrtv_lambda_tv),
                                 ("lrtv_lambda_rank", lrtv_lambda_rank)) if v is not None}
    return lrtv(volume, target, memory_limit=engine.memory_limit if engine else None,
                progress=engine.progress if engine else True, fwhm_mm=input_fwhm, psf=input_psf, **options)
