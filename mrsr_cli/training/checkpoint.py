"""Checkpoints: weights, Adam moments, stateful loss terms and loop state in one safetensors file (no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

from mrsr_cli.errors import MrsrError


def save_checkpoint(path, net, optimizer, state: dict, loss_state: dict | None = None) -> None:
    """Weights, Adam moments, stateful loss terms and loop state in one safetensors file (no pickle)."""
    import torch
    from safetensors.torch import save_file

    from mrsr_cli.data.io import atomic_write

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    for name, module in (loss_state or {}).items():
        tensors.update({f"loss.{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    for k, v in state.pop("best_weights", {}).items():
        tensors[f"best.{k}"] = v.detach().cpu().contiguous()
    for i, s in optimizer.state_dict()["state"].items():
        for key, value in s.items():
            tensors[f"optim.{i}.{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu().contiguous()
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={"mrsr-checkpoint": json.dumps(state)}))


def load_checkpoint(path, net, optimizer, loss_state: dict | None = None) -> tuple[dict, dict]:
    """Restore weights, stateful loss terms and Adam state; returns ``(loop state, best weights)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise MrsrError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:
        raise MrsrError(f"cannot read checkpoint {path}: {exc}") from None
    if "mrsr-checkpoint" not in meta:
        raise MrsrError(f"{path} is not an mrsr training checkpoint")
    state = json.loads(meta["mrsr-checkpoint"])
    try:
        net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        for name, module in (loss_state or {}).items():
            prefix = f"loss.{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    except RuntimeError:
        raise MrsrError(f"checkpoint {path} does not match the requested architecture") from None
    opt_state = optimizer.state_dict()
    restored = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, i, name = key.split(".", 2)
            restored.setdefault(int(i), {})[name] = value
    opt_state["state"] = restored
    optimizer.load_state_dict(opt_state)
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    return state, best
