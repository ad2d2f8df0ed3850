"""Exact halo tiling and the flip self-ensemble, over any ``predict`` callable.

How it works (all sizes in voxels of the output grid):

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
* Flip self-ensemble (``--ensemble N``, default 2): the predictor also runs on copies of the
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
# The most passes that keep a whole brain at ×2 well under a minute on 2 CPU cores (docs/benchmarks.md).
DEFAULT_ENSEMBLE = 2


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
    ensemble: int = DEFAULT_ENSEMBLE  # flip self-ensemble passes (1 = off, 2, 4, 8): see run_self_ensemble

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
        if ensemble not in ENSEMBLE_SIZES:
            raise UsageError(f"--ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {ensemble}")

    @classmethod
    def from_cli(cls, *, device="auto", precision="auto", tile_size=None, memory_limit=None, threads=None, progress=True,
                 ensemble=None):
        """Options from the command line's values: ``memory_limit`` as text (``4G``), ``ensemble`` ``None`` for the
        default.  A user's ``tile_size`` is 0 (whole volume) or at least :data:`MIN_TILE_SIZE` (the
        planner's own smallest core): a 1-voxel core with a 10-voxel halo recomputes 9261 voxels
        for each one it keeps, and would run for hours."""
        if tile_size is not None and 0 < tile_size < MIN_TILE_SIZE:
            raise UsageError(f"--tile-size must be 0 (whole volume) or at least {MIN_TILE_SIZE} voxels, got {tile_size}")
        return cls(device=device, precision=precision, tile_size=tile_size,
                   memory_limit=parse_bytes(memory_limit) if memory_limit else None, threads=threads, progress=progress,
                   ensemble=DEFAULT_ENSEMBLE if ensemble is None else ensemble)


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

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.float32))[None]
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.to(memory_format=self.memory_format)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                                    enabled=self.autocast_dtype is not None):
            pred = self.net(x)
        return pred[0, 0].float().cpu().numpy()

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
    """Largest cubic core (multiple of 8, ≥ 8) whose tile box (clipped to the volume) fits ``budget`` bytes."""
    longest = max(shape)
    core = 8
    for candidate in range(8, longest + 8, 8):
        box = [min(candidate + 2 * halo, n) for n in shape]
        if box[0] * box[1] * box[2] * per_voxel > budget:
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
              reserved_bytes: int = 0, label: str = "super-resolving") -> tuple[np.ndarray, dict]:
    """Run ``predict`` over a volume of ``shape`` (output voxels) by exact halo tiling.

    ``predict``: a predictor (``halo``, ``bytes_per_voxel``, ``device``, ``precision``, called on
    a float32 ``(C, *box)`` tile) or a network, wrapped by :func:`as_predictor`.
    ``read_input(box)`` returns the float32 input ``(C, *box shape)`` for a box of slices inside
    the volume.  Returns the float32 output and a dict with the device, precision, core and tile
    counts.  ``fault_injector(tile_shape)`` is a test hook that may raise an out-of-memory error.
    ``reserved_bytes``: host memory the caller holds besides ``out``, taken off
    ``--memory-limit`` too.  ``label`` names the work on the progress bar.
    """
    from rich.progress import TextColumn, TimeRemainingColumn

    from mrsr_cli.console import ProgressBar

    predict = as_predictor(predict, options)
    device = predict.device
    shape = tuple(int(n) for n in shape)
    halo = int(predict.halo)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    core = _plan_core(shape, halo, predict.bytes_per_voxel, device, options, out.nbytes + reserved_bytes)
    started = time.perf_counter()
    n_tiles = 0
    z = 0
    progress = ProgressBar(label, 1, TextColumn("{task.completed}/{task.total} tiles"), TimeRemainingColumn(),
                           enabled=options.progress)
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
    info = {
        "Device": str(device),
        "Precision": predict.precision,
        "TileCore": core,
        "TileHalo": halo,
        "Tiles": n_tiles,
        "InferenceSeconds": round(time.perf_counter() - started, 3),
    }
    log.info("engine: %s, %s, core %d^3 (+%d halo), %d tiles, %.1f s", device, predict.precision, core, halo, n_tiles,
             info["InferenceSeconds"])
    return out, info


def _plan_core(shape, halo: int, per_voxel: int, device, options: EngineOptions, host_bytes: int) -> int:
    """The tile core edge: ``--tile-size`` as given (0 = whole volume), else the largest that fits
    the memory budget after ``host_bytes`` of host buffers (CPU) and 64 MiB of slack."""
    if options.tile_size == 0:
        return max(shape)
    if options.tile_size:
        return int(options.tile_size)
    if options.memory_limit:
        host_fixed = host_bytes if device.type == "cpu" else 0
        budget = options.memory_limit - host_fixed - 64 * 1024 * 1024
        if budget < per_voxel * (8 + 2 * halo) ** 3:
            raise MrsrError(f"the memory limit is too small for this volume: its output buffers alone need "
                            f"{host_bytes / 2**20:.0f} MiB")
    else:
        free = available_memory(device)
        budget = free // 2 if device.type == "cpu" else int(free * 0.8)
    return choose_core(shape, halo, per_voxel, budget)


def run_self_ensemble(predict, read_input, shape, options: EngineOptions) -> tuple[np.ndarray, dict]:
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
    flips = ENSEMBLE_FLIPS[:options.ensemble]
    if len(flips) == 1:
        out, info = run_tiled(predict, read_input, shape, options)
        return out, {**info, "SelfEnsemble": 1}
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
        _, info = run_tiled(predict, read_mirrored, shape, options, out=mirrored_view, reserved_bytes=total.nbytes,
                            label=f"super-resolving, pass {k}/{len(flips)}")
        total += buffer
        seconds, tiles = seconds + info["InferenceSeconds"], tiles + info["Tiles"]
    total /= len(flips)
    return total, {**info, "Tiles": tiles, "InferenceSeconds": round(seconds, 3), "SelfEnsemble": len(flips)}
