"""Networks and their registry.

Every network is fully convolutional with zero ("same") padding and satisfies
:class:`SRNetwork`, the small protocol the engine and the trainer rely on:

* ``halo`` — voxels each side that one output voxel depends on (receptive field
  ``2·halo + 1``), which exact tiled inference needs (:mod:`mrsr_cli.infer.tiling`);
* ``in_channels`` — input channels, in the order of :mod:`mrsr_cli.models.channels`;
* ``activation_bytes_per_voxel(element_bytes)`` — peak activation bytes per tile voxel at a
  compute precision of ``element_bytes`` (2 for bf16/fp16, 4 for fp32), to size tiles;
* ``params`` — the constructor's keyword arguments, stored in the model file's metadata.

Adding an architecture is one file plus one line: write the ``nn.Module`` in
``mrsr_cli/models/NAME.py`` (constructor keywords = its parameters, including
``in_channels``, ``factor_channels``, ``reference_encoding`` and ``init``), then add it to
:data:`ARCHITECTURES`.  ``mrsr train --arch NAME --arch-param KEY=VALUE`` passes parameters
through :func:`build_model`, which checks them against the constructor's signature.

Example::

    >>> net = build_model("recnn", {"layers": 10, "filters": 32, "kernel": 3, "in_channels": 1})
    >>> net.halo
    10
    >>> build_model("recnn", {"blocks": 4})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: architecture 'recnn' has no parameter 'blocks' (known: factor_channels, filters, ...)
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

from mrsr_cli.models.edsr3d import EDSR3D
from mrsr_cli.models.recnn import ReCNN, SRCNN3D


@runtime_checkable
class SRNetwork(Protocol):
    """What :mod:`mrsr_cli.infer.tiling` and :mod:`mrsr_cli.training.loop` need of a network."""

    halo: int
    in_channels: int
    params: dict

    def activation_bytes_per_voxel(self, element_bytes: int) -> int: ...


ARCHITECTURES: dict[str, type] = {"recnn": ReCNN, "srcnn3d": SRCNN3D, "edsr3d": EDSR3D}


def architecture_parameters(architecture: str) -> dict:
    """``{name: default}`` of an architecture's constructor keywords (``inspect.Parameter.empty``
    when required)."""
    cls = _lookup(architecture)
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_parameters(architecture: str, params: dict) -> dict:
    """``params`` unchanged, or ``ValueError`` naming a key the constructor does not take."""
    known = architecture_parameters(architecture)
    for key in params:
        if key not in known:
            raise ValueError(f"architecture {architecture!r} has no parameter {key!r} (known: {', '.join(sorted(known))})")
    return params


def build_model(architecture: str, params: dict):
    """Instantiate a registered architecture from its (checked) parameters."""
    cls = _lookup(architecture)
    return cls(**check_parameters(architecture, params))


def _lookup(architecture: str) -> type:
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r} (known: {', '.join(ARCHITECTURES)})") from None


__all__ = ["ARCHITECTURES", "SRNetwork", "EDSR3D", "ReCNN", "SRCNN3D", "architecture_parameters", "build_model", "check_parameters"]
