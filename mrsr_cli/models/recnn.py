"""ReCNN (Pham et al. 2019, eq. 5-6) and the SRCNN3D baseline.

ReCNN: ``L`` conv layers of ``n`` filters of size ``f³`` with ReLU, the last layer linear to one
channel, and a residual skip from the spline-interpolated input: ``X = Z + F(Z)``.  Extra input
channels are concatenated and the residual stays on channel 0.  Channel order: the ILR image,
then ``factor_channels`` constant maps of the per-axis upscaling factor (log2; 0 for blind
multiscale networks as in the paper), then ``voxel_channels`` constant maps of the output voxel
size (log2 of mm; 0 for networks that do not take it), then ``psf_channels`` constant maps of the
input's PSF width (:func:`mrsr_cli.models.channels.psf_encoding`; 0 for networks that assume the PSF of
``mrsr simulate``), then registered HR references (Pham §5).
``reference_encoding`` records how the engine turns a reference into its channel
(:func:`mrsr_cli.infer.engine.encode_reference`); the network itself does not use it.
SRCNN3D: 9³/1³/5³ convolutions with 64/32/1 filters, no residual (Pham's baseline).
"""

from __future__ import annotations

import torch
from torch import nn

from mrsr_cli.models.graph import Apply, Chain, Conv, Step, evaluate, receptive_radius, residual_final


def _init(module: nn.Module, scheme: str) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            if scheme == "msra":  # He et al. 2015: N(0, sqrt(2 / (f³ · n_in)))
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                raise ValueError(f"unknown init {scheme!r} (msra or xavier)")
            nn.init.zeros_(m.bias)


class _ConvStack(nn.Module):
    """Sequential 3-D convs with ReLU between them; the last layer is linear."""

    residual = False

    def __init__(self, convs: list[nn.Conv3d]):
        super().__init__()
        self.convs = nn.ModuleList(convs)

    @property
    def halo(self) -> int:
        return receptive_radius(self.graph())

    @property
    def in_channels(self) -> int:
        return self.convs[0].in_channels

    def activation_bytes_per_voxel(self, element_bytes: int) -> int:
        """Three activations of the widest layer (input, output and a reorder buffer)."""
        return 3 * max(c.out_channels for c in self.convs) * element_bytes

    def graph(self) -> Step:
        """The dataflow (:mod:`mrsr_cli.models.graph`): convs with ReLU between them, the last linear, then
        the residual on channel 0 (or a cast to fp32)."""
        steps = []
        for i, conv in enumerate(self.convs):
            steps += [Conv(conv)] if i == len(self.convs) - 1 else [Conv(conv), Apply(torch.relu_)]
        return residual_final(self.residual)(Chain(tuple(steps)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return evaluate(self.graph(), x)


class ReCNN(_ConvStack):
    """Residual 3-D CNN: ``layers`` convs of ``filters`` × ``kernel``³, X = Z + F(Z).

    The constructor's defaults are the paper's 20 × 64; ``mrsr train`` starts from
    ``training_defaults``, a size that trains in an hour on a 2-core CPU (docs/models.md).
    """

    training_defaults = {"layers": 10, "filters": 32, "kernel": 3}

    def __init__(self, layers: int = 20, filters: int = 64, kernel: int = 3, in_channels: int = 1,
                 residual: bool = True, init: str = "msra", factor_channels: int = 0,
                 reference_encoding: str = "intensity", voxel_channels: int = 0, psf_channels: int = 0):
        if layers < 2 or filters < 1 or kernel < 1 or kernel % 2 == 0 or in_channels < 1:
            raise ValueError("ReCNN needs layers >= 2, filters >= 1, an odd kernel and in_channels >= 1")
        pad = kernel // 2
        convs = [nn.Conv3d(in_channels, filters, kernel, padding=pad)]
        convs += [nn.Conv3d(filters, filters, kernel, padding=pad) for _ in range(layers - 2)]
        convs += [nn.Conv3d(filters, 1, kernel, padding=pad)]
        super().__init__(convs)
        self.residual = residual
        _init(self, init)
        if residual:  # start near the identity X ≈ Z: a small initial residual trains faster
            with torch.no_grad():
                self.convs[-1].weight.mul_(0.1)
        self.params = {"layers": layers, "filters": filters, "kernel": kernel, "in_channels": in_channels,
                       "residual": residual, "init": init, "factor_channels": factor_channels,
                       "reference_encoding": reference_encoding, "voxel_channels": voxel_channels,
                       "psf_channels": psf_channels}


class SRCNN3D(_ConvStack):
    """SRCNN in 3-D (Pham's baseline): 9³ (64) → 1³ (32) → 5³ (1), non-residual by default."""

    def __init__(self, in_channels: int = 1, residual: bool = False, init: str = "msra", factor_channels: int = 0,
                 reference_encoding: str = "intensity", voxel_channels: int = 0, psf_channels: int = 0):
        convs = [nn.Conv3d(in_channels, 64, 9, padding=4), nn.Conv3d(64, 32, 1), nn.Conv3d(32, 1, 5, padding=2)]
        super().__init__(convs)
        self.residual = residual
        _init(self, init)
        self.params = {"in_channels": in_channels, "residual": residual, "init": init, "factor_channels": factor_channels,
                       "reference_encoding": reference_encoding, "voxel_channels": voxel_channels,
                       "psf_channels": psf_channels}
