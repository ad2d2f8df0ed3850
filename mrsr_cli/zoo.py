"""Model registry: name resolution, the shared cache, checksummed downloads.

Resolution order for ``--model X`` (upscale, train --init-from, Nipype):

1. ``X`` is a path to an existing file (or contains a path separator / ends in .safetensors);
2. ``<dir>/X.safetensors`` for each read-only dir in ``MRSR_MODEL_PATH`` (``:``-separated);
3. ``$MRSR_HOME/models/X.safetensors`` (``MRSR_HOME`` defaults to the platform user cache,
   e.g. ``~/.cache/mrsr``);
4. the builtin models shipped in the package (``default``, ``guided``);
5. otherwise an error telling which ``mrsr fetch-model`` command to run — nothing but
   ``fetch-model`` ever downloads.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

from .errors import MrsrError, UsageError

BUILTIN = {
    "default": "mrsr-recnn-t1w.safetensors",
    "guided": "mrsr-recnn-guided.safetensors",
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """Model names are plain file-name stems: no '/', no '..', nothing absolute."""
    if not NAME_RE.match(name or "") or ".." in name:
        raise UsageError(f"invalid model name {name!r} (letters, digits, '.', '_', '-'; no paths)")
    return name


def mrsr_home() -> Path:
    """The writable user cache (``MRSR_HOME`` or the platform user cache dir)."""
    env = os.environ.get("MRSR_HOME")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mrsr", appauthor=False))


def search_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("MRSR_MODEL_PATH", "").split(os.pathsep) if p]


def builtin_path(name: str) -> Path | None:
    if name not in BUILTIN:
        return None
    path = Path(str(resources.files("mrsr_cli") / "data" / "models" / BUILTIN[name]))
    return path if path.exists() else None


def resolve_model(model: str | None, guided: bool = False) -> tuple[Path, str]:
    """``(path, display name)`` for a model name or path, following the resolution order."""
    if model is None:
        model = "guided" if guided else "default"
    candidate = Path(model).expanduser()
    if candidate.is_file():
        return candidate, candidate.name
    if os.sep in model or "/" in model or model.endswith(".safetensors"):
        raise MrsrError(f"model file not found: {model}")
    name = validate_name(model)
    for folder in search_dirs() + [mrsr_home() / "models"]:
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return path, name
    path = builtin_path(name)
    if path is not None:
        return path, name
    raise MrsrError(f"model {name!r} is not available locally; download it with: mrsr fetch-model {name}")
