"""Data-parallel training on torch DDP, when ``mrsr train`` runs under ``torchrun`` (or ``srun`` +
``torchrun`` on SLURM): the launcher's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT`` or a rendezvous) says how many processes there are.

What each process does (docs/cluster.md): ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per local
rank); the global ``--batch`` is split evenly (it must divide by the number of processes); patch
``i`` of iteration ``it`` is drawn from ``default_rng([seed, it, i])`` whichever process draws it,
so a run gives the same patches for any world size and resumes across a changed one; gradients are
averaged by DDP (a mean-of-means, equal to the global batch's mean for the losses here); rank 0
alone writes the curve, checkpoints and the model.  Without a launcher nothing changes.

Example::

    >>> ctx = detect({})
    >>> ctx.enabled, ctx.world_size, ctx.is_main
    (False, 1, True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    enabled: bool = False  # launched by torchrun (even with one process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect(environ=None) -> DistributedContext:
    """The process's place in a torchrun launch, from the environment."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env or "RANK" not in env:
        return DistributedContext()
    return DistributedContext(rank=int(env["RANK"]), world_size=int(env["WORLD_SIZE"]),
                              local_rank=int(env.get("LOCAL_RANK", 0)), enabled=True)


def start(ctx: DistributedContext, device):
    """Join the process group (gloo on CPU, nccl on CUDA); returns the device this rank uses."""
    import torch
    import torch.distributed as dist

    if not ctx.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def stop(ctx: DistributedContext) -> None:
    """Leave the process group together: every rank waits at a barrier (rank 0 arrives once it has
    written the model), then the group is destroyed on all of them at once."""
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def mean_across(ctx: DistributedContext, values: list[float]) -> list[float]:
    """Element-wise mean of ``values`` over the processes (identity without a launcher)."""
    if not ctx.enabled or ctx.world_size == 1:
        return list(values)
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / ctx.world_size).tolist()


def any_across(ctx: DistributedContext, flag: bool) -> bool:
    """True on every process when it is true on one (so all stop at the same iteration)."""
    return bool(mean_across(ctx, [float(flag)])[0] > 0)


def gather(ctx: DistributedContext, obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not ctx.enabled or ctx.world_size == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def average_gradients(ctx: DistributedContext, parameters) -> None:
    """All-reduce the gradients of parameters that DDP does not own (stateful loss terms)."""
    if not ctx.enabled or ctx.world_size == 1:
        return
    import torch.distributed as dist

    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ctx.world_size
