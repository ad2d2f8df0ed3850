"""Networks and their registry.

Every network is fully convolutional with zero ("same") padding and exposes ``halo``: the
number of voxels each side that one output voxel depends on (receptive field = 2·halo + 1),
which is what exact tiled inference needs (:mod:`mrsr_cli.engine`).

Example::

    net = build_model("recnn", {"layers": 10, "filters": 32, "kernel": 3, "in_channels": 1})
    net.halo   # 10
"""

from __future__ import annotations

from .recnn import ReCNN, SRCNN3D

ARCHITECTURES = {"recnn": ReCNN, "srcnn3d": SRCNN3D}


def build_model(architecture: str, params: dict):
    """Instantiate a registered architecture from its metadata parameters."""
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r} (known: {', '.join(ARCHITECTURES)})") from None
    return cls(**params)
