"""Training losses: a registry of terms and weighted-sum expressions over them.

A term is ``fn(pred, target, ilr, ctx) -> scalar tensor``: ``pred`` the network output
``(B, 1, p, p, p)`` (any float dtype), ``target`` the HR patch, ``ilr`` the spline input
(channel 0 of the network input), all in the model's normalised intensity units; ``ctx`` a dict
of what the loop knows (``iteration``, ``epoch``), rebuilt every step.  A term with state
(trained parameters) is registered as a factory with ``stateful = True`` whose call
``factory(seed=...)`` returns an ``nn.Module`` with ``setup(volumes, seed)`` and ``metadata()``
(:class:`_LearnedSharpnessFactory`; docs/extending.md).

``--loss`` takes an expression: terms joined by ``+``, each an optional weight and ``*``, e.g.
``psnr`` (the default), ``mse`` (Pham), ``l1+1e-5*lowrank+5e-3*sharpness`` (the DNSP priors of
:mod:`mrsr_cli.training.priors`: ``lowrank``, ``sharpness``, ``learned-sharpness``, whose weights must be
positive; the paper's α 1e-5, β 5e-3).  :func:`parse_loss` checks every name against :data:`LOSSES`.

Adding a stateless term is one function plus one line: write ``def my_term(pred, target, ilr, ctx)``
here (or in its own module) and add ``"my-term": my_term`` to :data:`LOSSES`.

Example::

    >>> expr = parse_loss("l1+1e-5*mse")
    >>> expr.terms
    [(1.0, 'l1'), (1e-05, 'mse')]
    >>> str(expr)
    'l1+1e-05*mse'
    >>> import torch
    >>> total, parts = expr(torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2), {})
    >>> round(float(total), 6), sorted(parts)
    (1.00001, ['l1', 'mse'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mrsr_cli.errors import UsageError

from mrsr_cli.evaluation.metrics import PSNR_LOSS_EPS, patch_psnr_gain  # noqa: F401 (PSNR_LOSS_EPS: part of this API)


def _patch_mse(pred, target):
    return ((pred.float() - target) ** 2).flatten(1).mean(1)


def mse(pred, target, ilr, ctx):
    """Mean squared error over the batch (Pham et al. 2019)."""
    return _patch_mse(pred, target).mean()


def l1(pred, target, ilr, ctx):
    """Mean absolute error (EDSR, DNSP)."""
    return (pred.float() - target).abs().mean()


def psnr_gain(pred, target, ilr, ctx):
    """Mean over patches of ``10·log10((MSE(pred) + ε) / (MSE(ILR) + ε))``: the (negative) PSNR gain
    over the spline input in dB, so a ×4 patch with a large spline error does not outweigh a ×2 one
    (:func:`mrsr_cli.evaluation.metrics.patch_psnr_gain`)."""
    return patch_psnr_gain(pred, target, ilr)


def _prior(name):
    """A DNSP prior of :mod:`mrsr_cli.training.priors`, imported when used (torch)."""
    def term(pred, target, ilr, ctx):
        from mrsr_cli.training import priors

        return getattr(priors, name)(pred, target, ilr, ctx)

    term.__doc__ = f"DNSP prior :func:`mrsr_cli.training.priors.{name}`."
    term.positive_weight = True  # a negative weight would ask for blur or for more rank
    return term


class _LearnedSharpnessFactory:
    """``learned-sharpness``: a stateful term, one :class:`mrsr_cli.training.priors.LearnedSharpness` per expression."""

    stateful = True
    positive_weight = True

    def __call__(self, seed: int = 0):
        from mrsr_cli.training.priors import LearnedSharpness

        return LearnedSharpness(seed=seed)


# name → term fn(pred, target, ilr, ctx), or a factory with ``stateful = True`` whose instances
# are nn.Modules (parameters trained with the network, saved in checkpoints and metadata)
LOSSES = {"psnr": psnr_gain, "mse": mse, "l1": l1, "lowrank": _prior("lowrank"), "sharpness": _prior("sharpness"),
          "learned-sharpness": _LearnedSharpnessFactory()}

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?"
_TERM = re.compile(rf"^\s*(?:(-?{_NUMBER})\s*\*\s*)?([a-z][a-z0-9_-]*)\s*$")


@dataclass(frozen=True)
class LossExpression:
    """A weighted sum of registered terms; calling it returns ``(total, {name: value})``.
    Stateful terms are built by :meth:`build_state` (the trainer does, with its seed)."""

    terms: list
    state: dict = field(default_factory=dict)  # name → nn.Module of a stateful term

    def build_state(self, seed: int = 0) -> dict:
        """Instantiate the stateful terms; returns ``{name: module}``."""
        for _, name in self.terms:
            if getattr(LOSSES[name], "stateful", False) and name not in self.state:
                self.state[name] = LOSSES[name](seed=seed)
        return self.state

    def __call__(self, pred, target, ilr, ctx: dict):
        total, parts = None, {}
        for weight, name in self.terms:
            if getattr(LOSSES[name], "stateful", False):
                value = self.build_state()[name](pred, target, ilr, ctx)
            else:
                value = LOSSES[name](pred, target, ilr, ctx)
            parts[name] = value.detach()
            weighted = value if weight == 1.0 else weight * value
            total = weighted if total is None else total + weighted
        return total, parts

    def __str__(self) -> str:
        return "+".join(name if w == 1.0 else f"{w:g}*{name}" for w, name in self.terms)


def parse_loss(text: str) -> LossExpression:
    """A :class:`LossExpression` from ``"W*name+W*name..."``; :class:`UsageError` on an unknown name."""
    pieces = re.split(r"(?<![0-9][eE])\+", str(text))
    terms = []
    for piece in pieces:
        match = _TERM.match(piece)
        if not match:
            raise UsageError(f"cannot read loss term {piece.strip()!r} in {text!r} (e.g. 'l1+1e-5*lowrank')")
        weight, name = float(match.group(1)) if match.group(1) else 1.0, match.group(2)
        if name not in LOSSES:
            raise UsageError(f"unknown loss term {name!r} (known: {', '.join(LOSSES)})")
        if any(name == n for _, n in terms):
            raise UsageError(f"loss term {name!r} appears twice in {text!r}")
        if weight < 0 and getattr(LOSSES[name], "positive_weight", False):
            raise UsageError(f"loss term {name!r} needs a positive weight (it already enters the loss with the sign "
                             f"that helps), got {weight:g}")
        terms.append((weight, name))
    return LossExpression(terms)
