"""Where and how precisely the network runs: device, precision and the memory it may use.

* ``--device auto`` = CUDA if available, else Apple MPS, else CPU.
* ``--precision auto`` = bf16 on CPUs with avx512_bf16/AMX and on CUDA compute capability ≥ 8,
  else fp32 (fp16 only on GPUs).  Residual additions and outputs stay fp32 whatever the precision.
* Memory (bytes): :func:`available_memory` is free device memory on CUDA, ``MemAvailable`` of
  the host otherwise; ``--memory-limit`` is read by :func:`parse_bytes`.

Example::

    >>> parse_bytes("1.5G")
    1610612736
    >>> element_bytes("bf16"), element_bytes("fp32")
    (2, 4)
"""

from __future__ import annotations

import math

from mrsr_cli.errors import MrsrError, UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def parse_bytes(text: str) -> int:
    """'4G', '512M', '1.5GB', '1000000' → bytes."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        value = float(s[:-1]) * units[s[-1]] if s and s[-1] in units else float(s)
    except ValueError:
        raise UsageError(f"cannot read memory size {text!r} (e.g. 4G, 512M)") from None
    if not math.isfinite(value) or value > 1 << 60:
        raise UsageError(f"memory size {text!r} is not a finite number of bytes (e.g. 4G, 512M)")
    if value < 16 << 20:
        raise UsageError(f"memory limit {text!r} is too small (at least 16M)")
    return int(value)


def cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MrsrError(f"device {name}: no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MrsrError("device mps: MPS is not available")
    return torch.device(name)


def resolve_precision(precision: str, device) -> str:
    import torch

    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise UsageError("fp16 precision is not supported on CPU (use bf16 or fp32)")
        return precision
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"
    return "fp32"


def available_memory(device) -> int:
    """Bytes free for the engine on ``device`` (host RAM for CPU)."""
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    from mrsr_cli.budget import host_memory_available

    return host_memory_available()



def element_bytes(precision: str) -> int:
    """Bytes per activation value at a compute precision."""
    return 2 if precision in ("bf16", "fp16") else 4
