"""Exact streamed inference: the volume flows through the network a few planes at a time.

Halo tiling recomputes each tile's halo: under a memory limit, 64³ cores with the paper network's
20-voxel halo cost (104/64)³ = 4.3× the work.  Streaming computes every voxel of every layer once.
The volume is cut along its first voxel axis into *slabs* of planes; each slab is pushed through
the network's graph (:mod:`mrsr_cli.models.graph`) step by step, and every convolution keeps the
last ``2·radius`` planes of its input (a rolling buffer) so that the next slab continues where
this one stopped.  A convolution emits output plane ``z`` as soon as it holds input planes up to
``z + radius`` (at the volume's faces it adds the zero planes the whole-volume "same" padding
adds), so the output lags the input by the network's halo; after the last slab, empty pushes flush
it a slab at a time (no convolution ever emits more than a slab).  Skip connections hold their
input until the body has emitted the same planes.

Memory: the buffers (:func:`stream_bytes_per_plane_voxel` per voxel of a plane), a few planes per
layer instead of the whole volume's activations.  When even one slab of whole planes does not fit,
:func:`mrsr_cli.infer.tiling.run_tiled` cuts the plane into columns (exact halo tiling on the other two axes, so only
those pay a halo) and streams each column.

The result equals the whole-volume pass: the same convolutions on the same values (bit for bit in
bf16; in fp32 oneDNN's blocking on thin slabs may round by a float32 ulp or two).  The tests compare
them for every network, with the flip ensemble and extra (constant, reference) channels.

Example::

    out = stream_volume(net.graph(), read_planes, depth=182, to_output=write_planes)
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from mrsr_cli.models.graph import Apply, Chain, Conv, Residual, Step, convolutions, receptive_radius

# Planes per slab.  Measured on 2 CPU cores (bf16; benchmarks/engine.py): 4 planes of a 218×182 plane run
# 1.17× faster than the whole volume in one call (the buffers stay in cache), 16 planes 0.93×, 2 planes 1.11×.
MAX_SLAB_PLANES = 4


class _ConvStream:
    def __init__(self, step: Conv, depth: int, slab: int):
        self.conv, self.radius, self.depth, self.slab = step.module, step.radius, depth, slab
        self.buffer: torch.Tensor | None = None
        self.buffer_start = 0  # plane index of buffer[:, :, 0]
        self.received = self.emitted = 0

    def push(self, x: torch.Tensor | None) -> torch.Tensor | None:
        """Take the next input planes (``None``: none) and return the next output planes, at most a slab
        of them (the rest follow on later pushes), or ``None``."""
        r, depth = self.radius, self.depth
        if x is not None:
            self.buffer = x if self.buffer is None else torch.cat([self.buffer, x], dim=2)
            self.received += x.shape[2]
        stop = depth if self.received == depth else self.received - r  # outputs [emitted, stop) are computable
        stop = min(stop, self.emitted + self.slab)  # a slab at a time, also when the last input flushes the lag
        if stop <= self.emitted:
            return None
        lo, hi = self.emitted - r, stop + r  # the input planes they read; outside [0, depth): zero padding
        part = self.buffer[:, :, max(lo, 0) - self.buffer_start:min(hi, depth) - self.buffer_start]
        if lo < 0 or hi > depth:
            zeros = part.new_zeros  # the whole-volume "same" padding at the volume's faces
            pieces = [zeros((*part.shape[:2], max(-lo, 0), *part.shape[3:])), part,
                      zeros((*part.shape[:2], max(hi - depth, 0), *part.shape[3:]))]
            part = torch.cat(pieces, dim=2)
        y = self._convolve(part)
        self.emitted = stop
        keep = max(stop - r, 0)
        # a copy of the planes still needed, so that the concatenation's storage (slab + 2·radius planes) is freed
        self.buffer = self.buffer[:, :, keep - self.buffer_start:].clone(memory_format=torch.preserve_format)
        self.buffer_start = keep
        return y

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        r = self.radius
        if x.device.type != "cpu" or not torch.backends.mkldnn.is_available():
            return F.conv3d(x, self.conv.weight, self.conv.bias, padding=(0, r, r))
        # On CPU, F.conv3d sends fp32 inputs of fewer than ~20 k voxel rows (a thin slab) to the im2col
        # fallback: 10× slower, hundreds of MiB, other rounding.  The oneDNN kernel the whole-volume
        # pass uses is called directly, with autocast's casts done here (it does not see this op).
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        weight = self.conv.weight.to(dtype)
        bias = None if self.conv.bias is None else self.conv.bias.to(dtype)
        return torch.ops.aten.mkldnn_convolution(x.to(dtype), weight, bias, [0, r, r], [1, 1, 1], [1, 1, 1], 1)


class _ApplyStream:
    def __init__(self, step: Apply):
        self.fn = step.fn

    def push(self, x):
        return None if x is None else self.fn(x)


class _ChainStream:
    def __init__(self, step: Chain, depth: int, slab: int):
        self.steps = [_stream(s, depth, slab) for s in step.steps]

    def push(self, x):
        for s in self.steps:  # every step runs, new planes or not: a later one may still hold a backlog
            x = s.push(x)
        return x


class _ResidualStream:
    def __init__(self, step: Residual, depth: int, slab: int):
        self.body, self.combine = _stream(step.body, depth, slab), step.combine
        self.pending: torch.Tensor | None = None  # input planes the body has not emitted yet

    def push(self, x):
        if x is not None:
            self.pending = x if self.pending is None else torch.cat([self.pending, x], dim=2)
        h = self.body.push(x)
        if h is None:
            return None
        n = h.shape[2]
        x_aligned, self.pending = self.pending[:, :, :n], self.pending[:, :, n:].clone(memory_format=torch.preserve_format)
        return self.combine(x_aligned, h)


def _stream(step: Step, depth: int, slab: int):
    if isinstance(step, Conv):
        return _ConvStream(step, depth, slab)
    if isinstance(step, Apply):
        return _ApplyStream(step)
    if isinstance(step, Chain):
        return _ChainStream(step, depth, slab)
    return _ResidualStream(step, depth, slab)


def stream_volume(graph: Step, read_planes: Callable[[int, int], torch.Tensor], depth: int,
                  to_output: Callable[[int, torch.Tensor], None], slab: int = MAX_SLAB_PLANES,
                  on_planes: Callable[[int], None] | None = None) -> None:
    """Run ``graph`` over ``depth`` planes: ``read_planes(z0, z1)`` gives the input planes ``[z0, z1)``
    as ``(1, C, z1 - z0, H, W)``; ``to_output(z0, planes)`` receives the output planes from ``z0``
    (in order, each once); ``on_planes(n)`` is told of each ``n`` output planes written (progress).
    Once the input is read, empty pushes flush the network's lag a slab at a time."""
    root = _stream(graph, depth, slab)
    written = read = 0
    flushes_left = (len(convolutions(graph)) + 1) * depth  # each flush push advances at least one convolution
    while written < depth:
        if read < depth:
            z1 = min(read + slab, depth)
            y = root.push(read_planes(read, z1))
            read = z1
        else:
            y = root.push(None)
            flushes_left -= 1
            if flushes_left < 0:
                raise RuntimeError("streamed inference stalled")  # a bug, not a user error
        if y is not None:
            to_output(written, y)
            written += y.shape[2]
            if on_planes is not None:
                on_planes(y.shape[2])


def stream_bytes_per_plane_voxel(graph: Step, in_channels: int, element_bytes: int, slab: int) -> int:
    """Peak bytes per voxel of one plane while :func:`stream_volume` runs ``graph`` with ``slab``
    planes per slab: every convolution's rolling buffer (its radius·2 + slab input planes while it
    runs), every skip connection's pending input (the body's halo + slab planes), the largest
    convolution's output and padded input twice over (concatenation and the conv's own workspace),
    plus the fp32 input and output slabs."""
    convs = convolutions(graph)
    buffers = sum((2 * c.radius + slab) * c.module.in_channels for c in convs)
    widest = max(c.module.in_channels + c.module.out_channels for c in convs)
    pending = _pending_planes(graph, slab)
    transient = 2 * (slab + 2 * max(c.radius for c in convs)) * widest
    return (buffers + pending + transient) * element_bytes + (slab * in_channels + 2 * slab) * 4


def _pending_planes(step: Step, slab: int) -> int:
    """Channel-planes held by skip connections (upper bound)."""
    if isinstance(step, Chain):
        return sum(_pending_planes(s, slab) for s in step.steps)
    if isinstance(step, Residual):
        first = convolutions(step.body)
        channels = first[0].module.in_channels if first else 1
        return (receptive_radius(step.body) + slab) * channels + _pending_planes(step.body, slab)
    return 0
