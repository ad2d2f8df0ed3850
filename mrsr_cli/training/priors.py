"""DNSP priors on the network's output as loss terms (Cherukuri et al., IEEE TIP 2020).

All three work on the output patch ``pred`` ``(B, 1, p, p, p)`` in the model's normalised
intensity units (input ÷ its 99.5th percentile, so bright tissue ≈ 1), with any network:

* ``lowrank`` (eqs. 2–4): the smooth rank surrogate R_δ(Y) = R − Σᵢ exp(−σᵢ²/(2δ²)) of a
  matrix Y with R singular values σᵢ.  The paper's Y is a 2-D image; here every 2-D slice of the
  patch along each of the three axes is one Y (3·p matrices of p × p per patch), and the term is
  the mean R_δ over them (a count between 0 and p).  δ = ``LOWRANK_DELTA`` = 0.01 normalised
  intensity: singular values well below it count as zero rank.  ``torch.linalg.svdvals``, batched.
* ``sharpness`` (eq. 5): −V with V the variance of the 3-D 6-neighbour Laplacian of the patch
  (valid region, no padding), averaged over the batch; the loss *subtracts* β·V, so the weight
  stays positive (``l1+5e-3*sharpness``).
* ``learned-sharpness`` (eqs. 8–14): −V_mod, V_mod the mean variance of the outputs of a bank of
  ``N_FILTERS`` learnable 3³ filters, initialised at the Laplacian plus N(0, 1e-4) noise.  Their
  regulariser S(Θ) = Σ‖W ⊛ smooth‖² − Σ‖W ⊛ sharp‖² over sharp and smooth patch sets trains the
  filters only (the network sees V_mod through detached filters; S, weighted by γ =
  ``GAMMA`` relative to the term's weight, does not reach the network).  Filters are used at
  unit Frobenius norm, so S has a minimum (the paper bounds them through its small γ instead).
  Patch rule (:meth:`LearnedSharpness.setup`): from each training volume draw ``CANDIDATES``
  random ``PATCH``³ patches centred in the head, keep those whose mean is above 0.1 (tissue, not
  background), and take the ``PER_VOLUME`` with the largest Frobenius norm of the Laplacian
  response as sharp and the ``PER_VOLUME`` with the smallest as smooth (the paper takes one of
  each per image and then inspects them by eye).  The filters are saved in checkpoints and in the
  model's metadata (``loss_state``).

Example::

    >>> import torch
    >>> flat = torch.ones(1, 1, 8, 8, 8)
    >>> float(lowrank(flat, None, None, {}))  # a constant patch: every slice has rank 1
    1.0
    >>> float(sharpness(flat, None, None, {}))
    -0.0
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOWRANK_DELTA = 0.01
N_FILTERS = 8
GAMMA = 1e-7 / 5e-3  # the paper's γ relative to its β: S's weight within the term
PATCH = 16
CANDIDATES = 64
PER_VOLUME = 4


def laplacian_kernel() -> torch.Tensor:
    """The 3-D 6-neighbour Laplacian (centre 6, faces −1) as a ``(1, 1, 3, 3, 3)`` kernel."""
    k = torch.zeros(1, 1, 3, 3, 3)
    k[0, 0, 1, 1, 1] = 6.0
    for axis in range(3):
        for side in (0, 2):
            idx = [1, 1, 1]
            idx[axis] = side
            k[(0, 0, *idx)] = -1.0
    return k


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """Half precision (autocast) to fp32; fp32 and fp64 as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def lowrank(pred, target, ilr, ctx):
    """Mean smooth rank surrogate R_δ of the patch's 2-D slices along the three axes."""
    y = _as_float(pred)[:, 0]  # (B, p, p, p)
    slices = torch.cat([y.reshape(-1, *y.shape[2:]), y.permute(0, 2, 1, 3).reshape(-1, y.shape[1], y.shape[3]),
                        y.permute(0, 3, 1, 2).reshape(-1, y.shape[1], y.shape[2])])
    sigma = torch.linalg.svdvals(slices)
    return (sigma.shape[-1] - torch.exp(-sigma ** 2 / (2 * LOWRANK_DELTA ** 2)).sum(-1)).mean()


def _variance(response: torch.Tensor) -> torch.Tensor:
    """Per-patch, per-channel variance over voxels, averaged."""
    return response.flatten(2).var(dim=-1).mean()


def sharpness(pred, target, ilr, ctx):
    """−Var(∇² pred): minimising it sharpens the output (eq. 5)."""
    pred = _as_float(pred)
    lap = F.conv3d(pred, laplacian_kernel().to(device=pred.device, dtype=pred.dtype))
    return -_variance(lap)


class LearnedSharpness(nn.Module):
    """The learned-sharpness term: a bank of filters, the patches that train them, and −V_mod + γ·S."""

    stateful = True

    def __init__(self, n_filters: int = N_FILTERS, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        noise = torch.randn(n_filters, 1, 3, 3, 3, generator=g) * 0.01  # variance 1e-4, as in the paper
        self.filters = nn.Parameter(laplacian_kernel().repeat(n_filters, 1, 1, 1, 1) + noise)
        self.register_buffer("sharp", torch.zeros(0, 1, PATCH, PATCH, PATCH), persistent=False)
        self.register_buffer("smooth", torch.zeros(0, 1, PATCH, PATCH, PATCH), persistent=False)

    def unit_filters(self) -> torch.Tensor:
        return self.filters / self.filters.flatten(1).norm(dim=1).clamp_min(1e-8)[:, None, None, None, None]

    def setup(self, volumes, seed: int) -> None:
        """Pick the sharp and smooth patch sets from the training volumes (normalised HR arrays
        with ``.data`` and ``.centres``), deterministically from ``seed``."""
        rng = np.random.default_rng([seed, 17])
        sharp, smooth = [], []
        kernel = laplacian_kernel()
        for vol in volumes:
            candidates = []
            for centre in vol.centres[rng.integers(len(vol.centres), size=CANDIDATES)]:
                start = np.clip(centre - PATCH // 2, 0, np.array(vol.data.shape) - PATCH)
                patch = vol.data[tuple(slice(s, s + PATCH) for s in start)]
                if patch.shape == (PATCH,) * 3 and patch.mean() > 0.1:
                    candidates.append(patch)
            if not candidates:
                continue
            stack = torch.from_numpy(np.stack(candidates)).float()[:, None]
            energy = F.conv3d(stack, kernel).pow(2).flatten(1).sum(1)
            order = torch.argsort(energy)
            smooth.append(stack[order[:PER_VOLUME]])
            sharp.append(stack[order[-PER_VOLUME:]])
        if not sharp:
            raise ValueError("no tissue patches for the learned-sharpness filters")
        self.sharp, self.smooth = torch.cat(sharp).to(self.filters.device), torch.cat(smooth).to(self.filters.device)

    def regulariser(self) -> torch.Tensor:
        """S(Θ) = Σ‖W ⊛ smooth‖² − Σ‖W ⊛ sharp‖² (mean over patches and filters)."""
        w = self.unit_filters()
        return F.conv3d(self.smooth, w).pow(2).mean() - F.conv3d(self.sharp, w).pow(2).mean()

    def forward(self, pred, target, ilr, ctx):
        pred = _as_float(pred)
        v_mod = _variance(F.conv3d(pred, self.unit_filters().detach().to(pred.dtype)))
        return -v_mod + GAMMA * self.regulariser()

    def metadata(self) -> dict:
        """What the model file records: the filters as they were used (unit norm) and as learnt."""
        return {"filters": self.filters.detach().cpu().numpy().round(6).tolist(), "normalised": True}
