"""Costs worked out from headers and options before any allocation: the memory budget.

Shared by every layer (like :mod:`mrsr_cli.errors`): a command turns the grid it will write into
bytes and refuses up front, with the number, what cannot fit.
"""

from __future__ import annotations

import math

from mrsr_cli.errors import MrsrError


def host_memory_available() -> int:
    """Bytes of host RAM available now (``MemAvailable``; 4 GiB where it cannot be read)."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def over_memory_limit(what: str, volumes: int, shape, memory_limit: int | None, available: bool = False,
                      grid: str = "output") -> str | None:
    """The message saying that ``what`` needs more than ``memory_limit`` bytes for ``volumes``
    float32 volumes of ``shape`` (the methods' memory checks; ``grid`` names it: the output's, or the
    input's), or ``None`` when it fits or there is no limit.

    >>> over_memory_limit("LRTV", 12, (256, 256, 256), 2**30) is None  # 768 MiB fit
    True
    >>> over_memory_limit("LRTV", 12, (512, 512, 512), 2**30)
    'LRTV needs about 6144 MiB for this output grid, over the memory limit of 1024 MiB'
    """
    needed = volumes * 4 * math.prod(int(n) for n in shape)
    if memory_limit is None or needed <= memory_limit:
        return None
    if available:  # no --memory-limit: the RAM free now, and the grid, so that a wrong option shows
        size = "×".join(str(int(n)) for n in shape)
        return (f"{what} needs about {needed / 2**20:.0f} MiB for a {size} {grid} grid, more than the "
                f"{memory_limit / 2**20:.0f} MiB of RAM available")
    return (f"{what} needs about {needed / 2**20:.0f} MiB for this {grid} grid, over the memory limit of "
            f"{memory_limit / 2**20:.0f} MiB")


def check_grid_fits(what: str, shape, volumes: int, memory_limit: int | None = None, grid: str = "output") -> None:
    """Refuse, before any allocation, work on a grid of ``shape`` (``grid``: the output's or the
    input's) that needs ``volumes`` float32 volumes of it beyond ``memory_limit`` bytes (default:
    the host RAM available now)."""
    said = (over_memory_limit(what, volumes, shape, memory_limit, grid=grid) if memory_limit
            else over_memory_limit(what, volumes, shape, host_memory_available(), available=True, grid=grid))
    if said:
        raise MrsrError(said)
