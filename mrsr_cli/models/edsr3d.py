"""EDSR-style 3-D network (Lim et al. 2017, as DNSP uses it), on the spline-interpolated input.

Head conv (in_channels → filters), ``blocks`` residual blocks conv–ReLU–conv whose output is
scaled by ``res_scale`` before it is added back (no batch norm), a body conv with EDSR's long
skip from the head, then a tail conv to one channel.  Like ReCNN it works on the ILR image on the
target grid and adds its output to channel 0 (``X = Z + F(Z)``), so one network serves any
factor, the factor channels and guided references are the same (:mod:`mrsr_cli.models.channels`), and
it tiles exactly: zero "same" padding everywhere, ``halo = (2·blocks + 3) · (kernel // 2)``.

Size: the paper's 32 blocks × 256 filters are for 2-D on a GPU; in 3-D one such block costs
256²·27·2 ≈ 3.5 MFLOP per voxel, 1 000× a 32-filter conv.  ``training_defaults`` (4 blocks × 32
filters, 11 convs, halo 11, 0.25 M parameters) match the default ReCNN's depth and width (10
convs, 0.23 M parameters) within 12 %, so a comparison at an equal training budget on 2 CPU cores compares the
architectures, not their sizes; the constructor's defaults (16 × 64) are a GPU-sized 3-D EDSR.

Example::

    >>> net = EDSR3D(blocks=2, filters=8, in_channels=4)
    >>> net.halo, sum(p.numel() for p in net.parameters())
    (7, 9769)
"""

from __future__ import annotations

import torch
from torch import nn

from mrsr_cli.models.graph import Apply, Chain, Conv, Residual, Step, evaluate, receptive_radius, residual_final
from mrsr_cli.models.recnn import _init


class _Block(nn.Module):
    def __init__(self, filters: int, kernel: int, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv3d(filters, filters, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv3d(filters, filters, kernel, padding=kernel // 2)
        self.res_scale = res_scale

    def combine(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(x, self.conv2(torch.relu(self.conv1(x))))


class EDSR3D(nn.Module):
    """``blocks`` residual blocks of ``filters`` × ``kernel``³, residual scaling ``res_scale``."""

    training_defaults = {"blocks": 4, "filters": 32}

    def __init__(self, blocks: int = 16, filters: int = 64, kernel: int = 3, res_scale: float = 0.1, in_channels: int = 1,
                 residual: bool = True, init: str = "msra", factor_channels: int = 0, reference_encoding: str = "intensity",
                 voxel_channels: int = 0, psf_channels: int = 0):
        super().__init__()
        if blocks < 1 or filters < 1 or kernel < 1 or kernel % 2 == 0 or in_channels < 1 or not 0 < res_scale <= 1:
            raise ValueError("EDSR3D needs blocks >= 1, filters >= 1, an odd kernel, in_channels >= 1 and 0 < res_scale <= 1")
        pad = kernel // 2
        self.head = nn.Conv3d(in_channels, filters, kernel, padding=pad)
        self.body = nn.Sequential(*[_Block(filters, kernel, res_scale) for _ in range(blocks)])
        self.body_end = nn.Conv3d(filters, filters, kernel, padding=pad)
        self.tail = nn.Conv3d(filters, 1, kernel, padding=pad)
        self.residual = residual
        _init(self, init)
        with torch.no_grad():  # start near the identity X ≈ Z, as ReCNN does
            self.tail.weight.mul_(0.1)
        self.params = {"blocks": blocks, "filters": filters, "kernel": kernel, "res_scale": res_scale,
                       "in_channels": in_channels, "residual": residual, "init": init, "factor_channels": factor_channels,
                       "reference_encoding": reference_encoding, "voxel_channels": voxel_channels,
                       "psf_channels": psf_channels}

    @property
    def halo(self) -> int:
        return receptive_radius(self.graph())  # (2·blocks + 3) · (kernel // 2)

    @property
    def in_channels(self) -> int:
        return self.head.in_channels

    def activation_bytes_per_voxel(self, element_bytes: int) -> int:
        """The head's output (kept for the long skip), a block's input, its intermediate and its output."""
        return 4 * self.head.out_channels * element_bytes

    def graph(self) -> Step:
        """The dataflow (:mod:`mrsr_cli.models.graph`): head, blocks ``x + s·conv(relu(conv(x)))``, body conv
        with the long skip from the head, tail, then the residual on channel 0."""
        blocks = [Residual(Chain((Conv(b.conv1), Apply(torch.relu), Conv(b.conv2))), b.combine) for b in self.body]
        body = Residual(Chain((*blocks, Conv(self.body_end))), _long_skip)
        return residual_final(self.residual)(Chain((Conv(self.head), body, Conv(self.tail))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return evaluate(self.graph(), x)


def _long_skip(head: torch.Tensor, body: torch.Tensor) -> torch.Tensor:
    return body + head
