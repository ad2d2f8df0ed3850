"""A network's dataflow as data: convolutions, plane-local operations and skip connections.

Each network here (:class:`~mrsr_cli.models.recnn.ReCNN`, ``SRCNN3D``,
:class:`~mrsr_cli.models.edsr3d.EDSR3D`) describes itself once by a :meth:`graph` made of four
kinds of step, and its ``forward`` is :func:`evaluate` of that graph.  The streamed inference
engine (:mod:`mrsr_cli.infer.streaming`) reads the same graph to run the network plane by plane,
so the two cannot disagree about what the network computes:

* :class:`Conv` — a ``Conv3d`` with odd kernel and "same" zero padding (``kernel // 2``);
* :class:`Apply` — a voxel-wise function (ReLU, scaling, a cast): it must not mix voxels;
* :class:`Chain` — steps one after the other;
* :class:`Residual` — ``combine(x, body(x))``, a skip connection around ``body``.

Example::

    >>> import torch
    >>> conv = torch.nn.Conv3d(1, 1, 3, padding=1)
    >>> g = Residual(Chain((Conv(conv), Apply(torch.relu))), lambda x, h: x + h)
    >>> x = torch.randn(1, 1, 5, 5, 5)
    >>> bool(torch.equal(evaluate(g, x), x + torch.relu(conv(x))))
    True
    >>> receptive_radius(g)
    1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch
from torch import nn


@dataclass(frozen=True)
class Conv:
    """A 3-D convolution with an odd cubic kernel and "same" zero padding."""

    module: nn.Conv3d

    def __post_init__(self):
        k, p = self.module.kernel_size, self.module.padding
        if len(set(k)) != 1 or k[0] % 2 == 0 or p != (k[0] // 2,) * 3 or self.module.stride != (1, 1, 1) \
                or self.module.dilation != (1, 1, 1) or self.module.groups != 1:
            raise ValueError("graph convolutions need an odd cubic kernel, 'same' padding, stride 1, no dilation")

    @property
    def radius(self) -> int:
        return self.module.kernel_size[0] // 2


@dataclass(frozen=True)
class Apply:
    """A voxel-wise function of one tensor."""

    fn: Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Chain:
    steps: tuple


@dataclass(frozen=True)
class Residual:
    """``combine(x, body(x))``: ``x`` and the body's output are aligned voxel for voxel."""

    body: "Step"
    combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


Step = Union[Conv, Apply, Chain, Residual]


def evaluate(step: Step, x: torch.Tensor) -> torch.Tensor:
    """The whole-volume value of ``step`` on ``x`` (``(N, C, D, H, W)``): the networks' ``forward``."""
    if isinstance(step, Conv):
        return step.module(x)
    if isinstance(step, Apply):
        return step.fn(x)
    if isinstance(step, Chain):
        for s in step.steps:
            x = evaluate(s, x)
        return x
    return step.combine(x, evaluate(step.body, x))


def receptive_radius(step: Step) -> int:
    """Voxels an output voxel reaches along each axis (the halo of exact tiling)."""
    if isinstance(step, Conv):
        return step.radius
    if isinstance(step, Apply):
        return 0
    if isinstance(step, Chain):
        return sum(receptive_radius(s) for s in step.steps)
    return receptive_radius(step.body)


def convolutions(step: Step) -> list[Conv]:
    """The graph's convolutions in the order they run."""
    if isinstance(step, Conv):
        return [step]
    if isinstance(step, Chain):
        return [c for s in step.steps for c in convolutions(s)]
    if isinstance(step, Residual):
        return convolutions(step.body)
    return []


def flops_per_voxel(step: Step) -> int:
    """Multiply-adds × 2 of the graph's convolutions per output voxel (voxel-wise steps are negligible)."""
    return sum(2 * c.module.kernel_size[0] ** 3 * c.module.in_channels * c.module.out_channels for c in convolutions(step))


def residual_final(residual: bool) -> Callable:
    """How a network on the spline-interpolated input ends: ``X = Z + F(Z)`` on channel 0 (fp32 whatever
    the compute precision), or ``F(Z)`` in fp32."""
    if residual:
        return lambda body: Residual(body, _add_to_channel0)
    return lambda body: Chain((body, Apply(_to_float)))


def _add_to_channel0(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return x[:, :1].float() + h.float()


def _to_float(h: torch.Tensor) -> torch.Tensor:
    return h.float()
