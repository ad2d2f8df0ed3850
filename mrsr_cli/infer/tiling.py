"""The engine's plan over any ``predict`` callable: streamed inference (the default), exact halo tiling,
background skipping and the flip self-ensemble.

* A network that describes its graph (:mod:`mrsr_cli.models.graph`) is **streamed**
  (:mod:`mrsr_cli.infer.streaming`): every voxel of every layer is computed once, with a few planes
  per layer in memory; columns of the other two axes only when a slab of whole planes does not fit
  the budget (:func:`_plan_stream`).  On a GPU the whole volume goes in one call when it fits.
* ``--tile-size N`` forces the halo tiling below (``0``: the whole volume in one call, the reference).
* With a ``foreground`` box (the engine's :func:`~mrsr_cli.models.channels.foreground_box`), the network
  runs only on that box grown by twice the halo; the rest is its exact response to background
  (:func:`_skip_background`).

Halo tiling (all sizes in voxels of the output grid):

* ``predict`` is fully convolutional with receptive field ``2·halo + 1`` (as MONAI's
  ``sliding_window_inference`` takes a predictor; :class:`TorchPredictor` wraps a network).
  The output is cut into cubic *cores* of ``core`` voxels; each tile's input box is the core
  plus ``halo`` voxels on every side, read lazily through ``read_input(box)``.  Boxes always lie
  inside the volume: at the border they are shifted inwards rather than padded, so the
  network's own zero padding there is exactly the whole-volume padding, and no voxel outside
  the volume is ever computed.  The halo is cropped.  Hence tiled output == whole-volume output
  for any tile size and shape — no blending, no seams.  Every box has the same shape, so
  oneDNN/cuDNN plans are reused.
* The core is the largest that fits the memory budget (``--memory-limit`` or auto: half the
  available RAM on CPU, 80 % of free device memory on CUDA) after the output buffer; bytes per
  tile voxel come from the predictor (:func:`bytes_per_tile_voxel`).  On an out-of-memory
  error the core is halved and work resumes at the current slab.
* Flip self-ensemble (``--ensemble N``; default :func:`auto_ensemble`, 1 or 2): the predictor also runs on copies of the
  input mirrored along voxel axes, each output is mirrored back and the N passes are averaged
  (:func:`run_self_ensemble`).

Example::

    out, info = run_self_ensemble(TorchPredictor(net, "cpu", "fp32"), read_input, (180, 216, 180),
                                  EngineOptions(ensemble=2))
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from mrsr_cli.infer.device import PRECISIONS, available_memory, element_bytes, parse_bytes, resolve_device, resolve_precision
from mrsr_cli.errors import MrsrError, UsageError

log = logging.getLogger("mrsr")

# Voxel axes flipped by each pass of the flip self-ensemble, in the order passes are added.
ENSEMBLE_FLIPS = ((), (0,), (1,), (0, 1), (2,), (0, 2), (1, 2), (0, 1, 2))
ENSEMBLE_SIZES = (1, 2, 4, 8)
MIN_TILE_SIZE = 8  # voxels: the smallest core a user may ask for (the planner's own smallest)
# --ensemble auto: a second pass when the two passes' estimated network time stays under this many seconds
# (auto_ensemble).  A whole brain 2 mm → 1 mm (7.2 M voxels) then gets 1 pass on a 2-core CPU, bf16 or not,
# and 2 on a GPU; a small volume 2 anywhere.  Two passes buy +0.1 dB at ×2 (docs/benchmarks.md, ensemble).
AUTO_ENSEMBLE_SECONDS = 6.0
# Network throughput (GFLOP/s) used by that estimate, per CPU thread at each compute precision, measured with
# benchmarks/engine.py: bf16 375 on a 2-core AMD EPYC with avx512_bf16 (default model), fp32 80 on one
# without AVX-512 (paper network; the machines that run fp32 by default).  CUDA: a floor for any recent card.
CPU_GFLOPS_PER_THREAD = {"bf16": 375.0, "fp16": 375.0, "fp32": 80.0}
CUDA_GFLOPS = 20000.0


@dataclass
class EngineOptions:
    """How to run the network: device, precision, tiling, memory, threads, progress."""

    device: str = "auto"
    precision: str = "auto"
    tile_size: int | None = None  # core edge in voxels; 0 = whole volume; None = auto
    memory_limit: int | None = None  # bytes; None = auto
    threads: int | None = None
    progress: bool = True
    channels_last: bool = True
    ensemble: int | None = None  # flip self-ensemble passes (1 = off, 2, 4, 8; None = auto_ensemble): run_self_ensemble

    def __post_init__(self):  # every way of making options (dataclasses.replace too) is checked here, once
        device, precision, tile_size, threads, ensemble = self.device, self.precision, self.tile_size, self.threads, self.ensemble
        if precision not in PRECISIONS:
            raise UsageError(f"--precision must be auto, fp32, bf16 or fp16, got {precision!r}")
        if tile_size is not None and tile_size < 0:
            raise UsageError("--tile-size must be >= 0")
        if threads is not None and threads < 1:
            raise UsageError("--threads must be >= 1")
        if not (device in ("auto", "cpu", "mps", "cuda") or device.startswith("cuda:")):
            raise UsageError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
        if ensemble is not None and ensemble not in ENSEMBLE_SIZES:
            raise UsageError(f"--ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {ensemble}")

    @classmethod
    def from_cli(cls, *, device="auto", precision="auto", tile_size=None, memory_limit=None, threads=None, progress=True,
                 ensemble=None):
        """Options from the command line's values: ``memory_limit`` as text (``4G``), ``ensemble`` ``None`` for
        :func:`auto_ensemble`.  A user's ``tile_size`` is 0 (whole volume) or at least :data:`MIN_TILE_SIZE` (the
        planner's own smallest core): a 1-voxel core with a 10-voxel halo recomputes 9261 voxels
        for each one it keeps, and would run for hours."""
        if tile_size is not None and 0 < tile_size < MIN_TILE_SIZE:
            raise UsageError(f"--tile-size must be 0 (whole volume) or at least {MIN_TILE_SIZE} voxels, got {tile_size}")
        return cls(device=device, precision=precision, tile_size=tile_size,
                   memory_limit=parse_bytes(memory_limit) if memory_limit else None, threads=threads, progress=progress,
                   ensemble=ensemble)


class TorchPredictor:
    """A network on a device at a precision, as a ``predict(tile) -> output`` callable.

    ``tile`` is the float32 input ``(C, *box)``; the output is float32 ``box``-shaped (channel 0).
    Holds what tiling needs to know: ``halo``, ``bytes_per_voxel``, ``device`` and
    ``precision`` (resolved, e.g. ``auto`` → ``bf16``).
    """

    def __init__(self, net, device="auto", precision: str = "auto", channels_last: bool = True, threads: int | None = None):
        import torch

        self.device = resolve_device(device) if isinstance(device, str) else device
        self.precision = resolve_precision(precision, self.device)
        if threads:
            torch.set_num_threads(threads)
        self.halo = int(net.halo)
        self.memory_format = (torch.channels_last_3d if channels_last and self.device.type in ("cpu", "cuda")
                              else torch.contiguous_format)
        self.net = net.to(self.device).eval().to(memory_format=self.memory_format)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.bytes_per_voxel = bytes_per_tile_voxel(net, self.precision)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.graph = net.graph() if hasattr(net, "graph") else None  # streamable (mrsr_cli.models.graph)
        self.in_channels = int(net.in_channels)

    def _to_device(self, array: np.ndarray):
        import torch

        array = np.ascontiguousarray(array, dtype=np.float32)
        if any(stride < 0 for stride in array.strides):  # a mirrored view with a length-1 axis counts as contiguous
            array = array.copy()
        x = torch.from_numpy(array)[None]
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        return x.to(memory_format=self.memory_format)

    def _compute(self):
        import torch

        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), self._compute():
            pred = self.net(self._to_device(tile))
        return pred[0, 0].float().cpu().numpy()

    def stream(self, read_planes, depth: int, to_output, slab: int, on_planes=None) -> None:
        """Streamed inference (:func:`mrsr_cli.infer.streaming.stream_volume`) over numpy planes:
        ``read_planes(z0, z1)`` → float32 ``(C, z1 - z0, H, W)``; ``to_output(z0, planes)`` gets float32
        ``(n, H, W)``."""
        import torch

        from mrsr_cli.infer.streaming import stream_volume

        def write(z0, y):
            to_output(z0, y[0, 0].float().cpu().numpy())

        with torch.inference_mode(), self._compute():
            stream_volume(self.graph, lambda z0, z1: self._to_device(read_planes(z0, z1)), depth, write, slab, on_planes)

    def release_cache(self) -> None:
        """Give cached device memory back after an out-of-memory error."""
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


def as_predictor(predict_or_net, options: "EngineOptions"):
    """A network (``torch.nn.Module``) becomes a :class:`TorchPredictor` on ``options``' device and
    precision; anything else is taken as a predictor already."""
    if hasattr(predict_or_net, "parameters"):
        return TorchPredictor(predict_or_net, options.device, options.precision, options.channels_last, options.threads)
    return predict_or_net


def bytes_per_tile_voxel(net, precision: str) -> int:
    """Peak bytes per tile-input voxel: the network's activations at the compute precision
    (:meth:`~mrsr_cli.models.SRNetwork.activation_bytes_per_voxel`), plus the fp32 input and output."""
    return net.activation_bytes_per_voxel(element_bytes(precision)) + 8 * net.in_channels + 16


def choose_core(shape, halo: int, per_voxel: int, budget: int) -> int:
    """Largest core (multiple of 8, ≥ 8; a cube over ``shape``'s axes: three for halo tiles, two for the
    streamed engine's columns) whose box (clipped to the volume) fits ``budget`` bytes."""
    longest = max(shape)
    core = 8
    for candidate in range(8, longest + 8, 8):
        box = [min(candidate + 2 * halo, n) for n in shape]
        if int(np.prod(box)) * per_voxel > budget:
            break
        core = candidate
    return min(core, longest)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return "OutOfMemory" in name or "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower()


def tile_windows(n: int, core: int, halo: int, start: int = 0) -> list[tuple[int, int, int, int]]:
    """``(core_start, core_stop, box_start, box_stop)`` along one axis of ``n`` voxels.

    Cores of ``core`` voxels partition ``[start, n)``.  Each box (the tile's input) has the fixed
    size ``core + 2·halo`` (or ``n`` when the axis is shorter) and lies *inside* the volume: at the
    volume border it is shifted inwards instead of padded, so the network's own zero padding
    there is exactly the whole-volume padding, and at interior edges the halo covers the
    receptive field.  Every core lies at least ``halo`` voxels from an interior box edge.
    """
    size = min(core + 2 * halo, n)
    if size == n:  # one box spans the axis: one window, never the same box computed twice
        return [(start, n, 0, n)]
    windows = []
    for c0 in range(start, n, core):
        c1 = min(c0 + core, n)
        b0 = min(max(c0 - halo, 0), n - size)
        b1 = b0 + size
        assert (b0 == 0 or c0 - b0 >= halo) and (b1 == n or b1 - c1 >= halo)
        windows.append((c0, c1, b0, b1))
    return windows


def run_tiled(predict, read_input, shape, options: EngineOptions, out: np.ndarray | None = None, fault_injector=None,
              reserved_bytes: int = 0, label: str = "super-resolving",
              foreground: tuple[slice, ...] | None = None) -> tuple[np.ndarray, dict]:
    """Run ``predict`` over a volume of ``shape`` (output voxels), exactly as one whole-volume pass would.

    ``predict``: a predictor (``halo``, ``bytes_per_voxel``, ``device``, ``precision``, called on
    a float32 ``(C, *box)`` tile) or a network, wrapped by :func:`as_predictor`.
    ``read_input(box)`` returns the float32 input ``(C, *box shape)`` for a box of slices inside
    the volume.  Networks that describe their graph are streamed (:mod:`mrsr_cli.infer.streaming`:
    every voxel of every layer computed once) unless ``options.tile_size`` asks for halo tiles
    (0: the whole volume in one call); other predictors are halo-tiled.  Returns the float32
    output and a dict with the device, precision and the plan.  ``fault_injector(tile_shape)`` is
    a test hook that may raise an out-of-memory error.  ``reserved_bytes``: host memory the
    caller holds besides ``out``, taken off ``--memory-limit`` too.  ``label`` names the work on
    the progress bar.  ``foreground``: a box outside which every input channel holds its background
    value (:func:`~mrsr_cli.models.channels.foreground_box`); the network then runs only on that box
    grown by twice the halo, and the rest gets the network's exact response to background
    (:func:`_skip_background`).
    """
    predict = as_predictor(predict, options)
    shape = tuple(int(n) for n in shape)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    host_bytes = out.nbytes + reserved_bytes
    started = time.perf_counter()

    def run_dense(read, dense_shape, dense_out):
        if options.tile_size is None and getattr(predict, "graph", None) is not None \
                and not _whole_fits_gpu(predict, dense_shape, options, host_bytes):
            return _run_streamed(predict, read, dense_shape, options, dense_out, host_bytes, label, fault_injector)
        return _run_halo_tiles(predict, read, dense_shape, options, dense_out, host_bytes, label, fault_injector)

    if foreground is None:
        info = {**run_dense(read_input, shape, out), "BackgroundSkipped": 0.0}
    else:
        info = _skip_background(predict, read_input, shape, out, foreground, run_dense)
    info = {"Device": str(predict.device), "Precision": predict.precision, **info,
            "InferenceSeconds": round(time.perf_counter() - started, 3)}
    if predict.device.type == "cuda":  # the GPU check reads it (benchmarks/gpu_check.sh)
        import torch

        info["PeakDeviceMemoryMiB"] = round(torch.cuda.max_memory_allocated(predict.device) / 2**20, 1)
    log.info("engine: %s, %s, %s, %.1f s", predict.device, predict.precision,
             ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("Device", "Precision", "InferenceSeconds")),
             info["InferenceSeconds"])
    return out, info


def _skip_background(predict, read_input, shape, out, foreground, run_dense) -> dict:
    """Run the network only where the head is, exactly.

    Output voxels farther than the halo from ``foreground`` see only background in their receptive
    field, so their value is the network's response to a background input, which depends only on
    their distance to the volume's faces (the zero padding) up to the halo: it is read from one
    small all-background volume of ``2·halo + 1`` voxels per axis (:func:`_background_response`).
    The network runs on ``foreground`` grown by twice the halo, whose outputs within one halo of
    ``foreground`` are exact (their receptive field lies inside it, or at a face of the volume).
    """
    halo = int(predict.halo)
    grown = lambda k: tuple(slice(max(s.start - k * halo, 0), min(s.stop + k * halo, n))  # noqa: E731
                            for s, n in zip(foreground, shape))
    empty = any(s.stop <= s.start for s in foreground)
    region, exact = (None, None) if empty else (grown(2), grown(1))
    if region is not None and all(s.stop - s.start == n for s, n in zip(region, shape)):
        return {**run_dense(read_input, shape, out), "BackgroundSkipped": 0.0}
    response = _background_response(predict, read_input, shape, foreground)
    info = {"Engine": "skipped", "TileHalo": halo, "Tiles": 0}
    if region is not None:
        def read_region(box):
            return read_input(tuple(slice(b.start + r.start, b.stop + r.start) for b, r in zip(box, region)))

        info = run_dense(read_region, tuple(s.stop - s.start for s in region), out[region])
    _fill_background(out, response, exact, halo)
    computed = 0 if region is None else int(np.prod([s.stop - s.start for s in region]))
    return {**info, "BackgroundSkipped": round(1.0 - computed / float(np.prod(shape)), 4)}


def _background_response(predict, read_input, shape, foreground) -> np.ndarray:
    """The network's output on an all-background volume of ``min(n, 2·halo + 1)`` voxels per axis: the
    input channels' values at a voxel outside ``foreground`` (0 for images, the constant channels'
    values), repeated."""
    point = [0, 0, 0]
    if all(s.stop > s.start for s in foreground):  # a voxel outside the box along an axis it leaves
        a = next(a for a, (s, n) in enumerate(zip(foreground, shape)) if s.start > 0 or s.stop < n)
        point[a] = 0 if foreground[a].start > 0 else shape[a] - 1
    values = read_input(tuple(slice(p, p + 1) for p in point))
    small = tuple(min(n, 2 * int(predict.halo) + 1) for n in shape)
    return predict(np.ascontiguousarray(np.broadcast_to(values, (values.shape[0], *small))))


def _background_index(n: int, small: int, halo: int) -> np.ndarray:
    """Index into the small background volume for each of ``n`` voxels: the same distance to the nearer
    face up to the halo (interior voxels all read the centre)."""
    if small == n:
        return np.arange(n)
    index = np.full(n, halo)
    index[:halo] = np.arange(halo)
    index[n - halo:] = np.arange(small - halo, small)
    return index


def _fill_background(out: np.ndarray, response: np.ndarray, exact, halo: int) -> None:
    """Write the background response everywhere outside the box ``exact`` (everywhere if ``None``)."""
    maps = [_background_index(n, response.shape[a], halo) for a, n in enumerate(out.shape)]
    rows = np.ix_(maps[1], maps[2])
    for i in range(out.shape[0]):
        plane = response[maps[0][i]][rows]
        if exact is None or not exact[0].start <= i < exact[0].stop:
            out[i] = plane
            continue
        y, x = exact[1], exact[2]
        out[i, :y.start], out[i, y.stop:] = plane[:y.start], plane[y.stop:]
        out[i, y, :x.start], out[i, y, x.stop:] = plane[y, :x.start], plane[y, x.stop:]


def _progress(label: str, total: int, unit: str, options: EngineOptions):
    from rich.progress import TextColumn, TimeRemainingColumn

    from mrsr_cli.console import ProgressBar

    return ProgressBar(label, total, TextColumn("{task.completed}/{task.total} " + unit), TimeRemainingColumn(),
                       enabled=options.progress)


def _run_streamed(predict, read_input, shape, options, out, host_bytes, label, fault_injector) -> dict:
    """Stream the volume through the network along its first axis, in columns of the other two when
    a slab of whole planes does not fit the memory budget; on an out-of-memory error, halve the
    column and start again."""
    from mrsr_cli.infer.streaming import stream_bytes_per_plane_voxel

    depth, halo = shape[0], int(predict.halo)
    per_plane_voxel = lambda slab: stream_bytes_per_plane_voxel(predict.graph, predict.in_channels,  # noqa: E731
                                                                element_bytes(predict.precision), slab)
    slab, column = _plan_stream(shape, halo, per_plane_voxel, predict.device, options, host_bytes)
    while True:
        windows = [(wy, wx) for wy in tile_windows(shape[1], column, halo) for wx in tile_windows(shape[2], column, halo)]
        progress = _progress(label, len(windows) * depth, "planes", options)
        try:
            for wy, wx in windows:
                box_y, box_x = slice(wy[2], wy[3]), slice(wx[2], wx[3])
                if fault_injector is not None:
                    fault_injector((slab, wy[3] - wy[2], wx[3] - wx[2]))
                crop = (slice(None), slice(wy[0] - wy[2], wy[1] - wy[2]), slice(wx[0] - wx[2], wx[1] - wx[2]))

                def to_output(z0, planes, wy=wy, wx=wx, crop=crop):
                    out[z0:z0 + planes.shape[0], wy[0]:wy[1], wx[0]:wx[1]] = planes[crop]

                predict.stream(lambda z0, z1: read_input((slice(z0, z1), box_y, box_x)), depth, to_output, slab,
                               progress.advance)
            break
        except Exception as exc:
            if not _is_oom(exc) or column <= MIN_TILE_SIZE:
                raise
            getattr(predict, "release_cache", lambda: None)()
            column = max(MIN_TILE_SIZE, min(column, max(shape[1:])) // 2)
            log.warning("out of memory while streaming; starting again with %d-voxel columns", column)
        finally:
            progress.close()
    return {"Engine": "streamed", "SlabPlanes": slab, "TileCore": min(column, max(shape[1:])), "TileHalo": halo,
            "Tiles": len(windows)}


def _whole_fits_gpu(predict, shape, options: EngineOptions, host_bytes: int) -> bool:
    """On a GPU one whole-volume call, when it fits, beats streaming (thin slabs leave the card idle)."""
    if predict.device.type != "cuda":
        return False
    return predict.bytes_per_voxel * int(np.prod(shape)) <= _budget(predict.device, options, host_bytes, 0)


def _plan_stream(shape, halo: int, per_plane_voxel, device, options: EngineOptions, host_bytes: int) -> tuple[int, int]:
    """``(slab planes, column edge)``: whole planes with the thickest slab (≤ MAX_SLAB_PLANES on CPU, 32 on a
    GPU) that fits the budget, else columns of the other two axes as large as fit with slabs of 4 (8 on a GPU)."""
    from mrsr_cli.infer.streaming import MAX_SLAB_PLANES

    budget = _budget(device, options, host_bytes, per_plane_voxel(1) * (MIN_TILE_SIZE + 2 * halo) ** 2)
    plane = shape[1] * shape[2]
    slabs = (32, 16, 8, 4, 2, 1) if device.type == "cuda" else (MAX_SLAB_PLANES, 2, 1)  # a GPU wants big calls
    for slab in slabs:
        if per_plane_voxel(slab) * plane <= budget:
            return min(slab, shape[0]), max(shape[1:])
    slab = 8 if device.type == "cuda" else MAX_SLAB_PLANES
    return slab, choose_core(shape[1:], halo, per_plane_voxel(slab), budget)


def _run_halo_tiles(predict, read_input, shape, options, out, host_bytes, label, fault_injector) -> dict:
    """Exact halo tiling with cubic cores (see the module's docstring)."""
    halo = int(predict.halo)
    core = _plan_core(shape, halo, predict.bytes_per_voxel, predict.device, options, host_bytes)
    n_tiles = 0
    z = 0
    progress = _progress(label, 1, "tiles", options)
    try:
        while z < shape[0]:
            per_axis = [tile_windows(shape[0], core, halo, z)] + [tile_windows(n, core, halo) for n in shape[1:]]
            progress.reset(len(per_axis[0]) * len(per_axis[1]) * len(per_axis[2]))
            try:
                for wz in per_axis[0]:
                    for wy in per_axis[1]:
                        for wx in per_axis[2]:
                            windows = (wz, wy, wx)
                            box = tuple(slice(b0, b1) for _, _, b0, b1 in windows)
                            if fault_injector is not None:
                                fault_injector(tuple(b1 - b0 for _, _, b0, b1 in windows))
                            pred = predict(read_input(box))
                            crop = tuple(slice(c0 - b0, c1 - b0) for c0, c1, b0, _ in windows)
                            out[tuple(slice(c0, c1) for c0, c1, _, _ in windows)] = pred[crop]
                            n_tiles += 1
                            progress.advance()
                    z = wz[1]  # this slab is done: an out-of-memory error resumes after it
            except Exception as exc:
                if not _is_oom(exc) or core <= 8:
                    raise
                getattr(predict, "release_cache", lambda: None)()
                core = max(8, core // 2)
                log.warning("out of memory with %d^3 tile cores; retrying from slab %d with %d^3", core * 2, z, core)
    finally:
        progress.close()
    return {"Engine": "tiled", "TileCore": core, "TileHalo": halo, "Tiles": n_tiles}


def _budget(device, options: EngineOptions, host_bytes: int, smallest: int) -> int:
    """Bytes the engine's buffers may use: ``--memory-limit`` less the host buffers (CPU) and 64 MiB of
    slack, else half the available RAM (CPU) or 80 % of free device memory (CUDA).  Refuses a limit
    below ``smallest``, the smallest plan's need."""
    if options.memory_limit:
        host_fixed = host_bytes if device.type == "cpu" else 0
        budget = options.memory_limit - host_fixed - 64 * 1024 * 1024
        if budget < smallest:
            raise MrsrError(f"the memory limit is too small for this volume: its output buffers alone need "
                            f"{host_bytes / 2**20:.0f} MiB")
        return budget
    free = available_memory(device)
    return free // 2 if device.type == "cpu" else int(free * 0.8)


def _plan_core(shape, halo: int, per_voxel: int, device, options: EngineOptions, host_bytes: int) -> int:
    """The tile core edge: ``--tile-size`` as given (0 = whole volume), else the largest that fits the budget."""
    if options.tile_size == 0:
        return max(shape)
    if options.tile_size:
        return int(options.tile_size)
    return choose_core(shape, halo, per_voxel, _budget(device, options, host_bytes, per_voxel * (8 + 2 * halo) ** 3))


def auto_ensemble(predict, voxels: int) -> int:
    """Passes for ``--ensemble auto``: 2 when two passes of the network over ``voxels`` output voxels are
    estimated to take at most ``AUTO_ENSEMBLE_SECONDS`` on this device at this precision (model FLOPs
    over ``CPU_GFLOPS_PER_THREAD`` × threads, or ``CUDA_GFLOPS``), else 1."""
    import torch

    from mrsr_cli.models.graph import flops_per_voxel

    graph = getattr(predict, "graph", None)
    if graph is None:
        return 2
    rate = throughput_gflops(predict.device.type, predict.precision, torch.get_num_threads())
    return 2 if 2 * flops_per_voxel(graph) * voxels / (rate * 1e9) <= AUTO_ENSEMBLE_SECONDS else 1


def throughput_gflops(device_type: str, precision: str, threads: int | None = None) -> float:
    """The network throughput the cost estimates assume (GFLOP/s): ``CUDA_GFLOPS`` on a GPU, else
    ``CPU_GFLOPS_PER_THREAD`` at ``precision`` × ``threads`` (default: torch's)."""
    import torch

    if device_type == "cuda":
        return CUDA_GFLOPS
    threads = threads or torch.get_num_threads()
    return CPU_GFLOPS_PER_THREAD.get(precision, CPU_GFLOPS_PER_THREAD["fp32"]) * threads


def run_self_ensemble(predict, read_input, shape, options: EngineOptions,
                      foreground: tuple[slice, ...] | None = None) -> tuple[np.ndarray, dict]:
    """:func:`run_tiled`, averaged over ``options.ensemble`` flipped copies of the input.

    Pass *k* mirrors the voxel axes ``ENSEMBLE_FLIPS[k]`` of the input, runs the network and
    mirrors its output back; the passes are averaged (the "self-ensemble" of Lim et al. 2017,
    EDSR+).  The networks are trained with random flips, so each pass is an equally valid
    estimate and their mean has less error.  Cost: ``ensemble`` × the inference time, one more
    output-sized buffer (taken off ``--memory-limit``).  Mirroring happens in voxel space, so
    the output grid (affine, field of view) is the same as without the ensemble;
    ``ensemble=1`` is exactly :func:`run_tiled`.

    Example::

        out, info = run_self_ensemble(net_or_predictor, read_input, (180, 216, 180), EngineOptions(ensemble=8))
    """
    predict = as_predictor(predict, options)
    passes = options.ensemble or auto_ensemble(predict, int(np.prod(shape)))
    chosen = {"SelfEnsembleChoice": "given" if options.ensemble else "auto"}
    flips = ENSEMBLE_FLIPS[:passes]
    if len(flips) == 1:
        out, info = run_tiled(predict, read_input, shape, options, foreground=foreground)
        return out, {**info, "SelfEnsemble": 1, **chosen}
    shape = tuple(int(n) for n in shape)
    total = np.zeros(shape, dtype=np.float32)
    buffer = np.empty(shape, dtype=np.float32)
    seconds, tiles = 0.0, 0
    for k, axes in enumerate(flips, 1):
        def read_mirrored(box, axes=axes):
            mirrored = tuple(slice(n - s.stop, n - s.start) if a in axes else s for a, (s, n) in enumerate(zip(box, shape)))
            return np.flip(read_input(mirrored), axis=tuple(a + 1 for a in axes))  # +1: channel axis first

        # writing the mirrored problem's output through a mirrored view un-mirrors it
        mirrored_view = buffer[tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(3))]
        mirrored_foreground = None if foreground is None else tuple(
            slice(n - s.stop, n - s.start) if a in axes and s.stop > s.start else s
            for a, (s, n) in enumerate(zip(foreground, shape)))
        _, info = run_tiled(predict, read_mirrored, shape, options, out=mirrored_view, reserved_bytes=total.nbytes,
                            label=f"super-resolving, pass {k}/{len(flips)}", foreground=mirrored_foreground)
        total += buffer
        seconds, tiles = seconds + info["InferenceSeconds"], tiles + info["Tiles"]
    total /= len(flips)
    return total, {**info, "Tiles": tiles, "InferenceSeconds": round(seconds, 3), "SelfEnsemble": len(flips), **chosen}
