"""Model files: one ``.safetensors`` file, metadata as JSON in its header (key ``"mrsr"``).

Metadata fields (``format_version`` 1)::

    format            "mrsr-model"
    name, version     model name and version string
    architecture      registry key ("recnn", "srcnn3d")
    params            constructor parameters (layers, filters, kernel, in_channels, ...)
    halo, receptive_field   voxels (receptive field = 2·halo + 1)
    contrasts         input contrasts, e.g. ["T1w"]; references: ["any (guided)"] for guided models
    normalization     {"method": "percentile", "percentile": 99.5}: input / p99.5 of non-zero voxels
    training          scales, PSF, patches, optimiser, augmentation, data provenance (sha256)
    software          mrsr and torch versions

Loading never unpickles: safetensors only holds raw tensors, and the header is checked
before anything is built: the framing, each tensor's entry (a float dtype, an integer shape and
integer offsets, inside the file), the metadata's types (:func:`check_metadata`), and the weights'
shapes against the architecture built without memory (on PyTorch's ``meta`` device), so a
small file that claims a huge network is refused before it is allocated.  Non-finite weights
are refused on loading and on saving.  Wrong or missing metadata, a truncated file or a non-safetensors
file (e.g. a pickle renamed) each raise :class:`~mrsr_cli.errors.MrsrError`.

Example::

    save_model("m.safetensors", net, {"name": "mine", ...})
    net, meta = load_model("m.safetensors")
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from mrsr_cli.errors import MrsrError
from mrsr_cli.data.io import atomic_write

FORMAT = "mrsr-model"
FORMAT_VERSION = 1
REQUIRED = ("format", "format_version", "name", "architecture", "params", "normalization")
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


def _check_tensor_entries(path: Path, header: dict) -> None:
    for key, entry in header.items():
        ok = (isinstance(entry, dict) and entry.get("dtype") in FLOAT_DTYPES
              and isinstance(entry.get("shape"), list) and all(isinstance(n, int) and n >= 0 for n in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(n, int) and not isinstance(n, bool) for n in entry["data_offsets"])
              and 0 <= entry["data_offsets"][0] <= entry["data_offsets"][1])
        if not ok:
            raise MrsrError(f"{path}: tensor {key!r} has a malformed entry (a float dtype, an integer shape and "
                            f"integer offsets expected)")


def check_metadata(meta: dict, where) -> dict:
    """``meta`` unchanged if its fields have the types a model file needs, else :class:`MrsrError`."""
    for key, kind in (("name", str), ("architecture", str), ("params", dict), ("normalization", dict)):
        if not isinstance(meta.get(key), kind):
            raise MrsrError(f"{where}: model metadata {key!r} must be a {kind.__name__}, got {type(meta.get(key)).__name__}")
    for key, value in meta["params"].items():
        if not isinstance(value, (int, float, str, bool)) or (isinstance(value, float) and value != value):
            raise MrsrError(f"{where}: model parameter {key!r} has an invalid value {value!r}")
    percentile = meta["normalization"].get("percentile")  # absent: the channel contract's default
    if percentile is not None and (isinstance(percentile, bool) or not isinstance(percentile, (int, float))
                                   or not 0 < percentile <= 100):
        raise MrsrError(f"{where}: model normalisation percentile must be in (0, 100], got {percentile!r}")
    return meta


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(path, net, meta: dict) -> Path:
    """Write ``net``'s weights and ``meta`` (plus format fields) atomically."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
            "halo": net.halo, "receptive_field": 2 * net.halo + 1, "params": net.params}
    import torch

    tensors = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    bad = [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise MrsrError(f"training diverged: non-finite weights in {bad[0]}; no model written (try a lower --lr)")
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"mrsr": json.dumps(meta)}))
    return path


def read_header(path) -> tuple[dict, dict]:
    """``(metadata, tensor_index)`` from a safetensors header, validating its framing."""
    path = Path(path)
    if not path.exists():
        raise MrsrError(f"model file not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise MrsrError(f"{path} is not a safetensors model file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n <= 1 or n > min(size - 8, 100 * 1024 * 1024):
            raise MrsrError(f"{path} is not a safetensors model file (bad header; pickled checkpoints are refused)")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MrsrError(f"{path} is not a safetensors model file (unreadable header)") from None
    if not isinstance(header, dict):
        raise MrsrError(f"{path} is not a safetensors model file")
    raw_meta = header.pop("__metadata__", {}) or {}
    if not isinstance(raw_meta, dict):
        raise MrsrError(f"{path} is not a safetensors model file (bad metadata)")
    _check_tensor_entries(path, header)
    end = max((v["data_offsets"][1] for v in header.values()), default=0)
    if 8 + n + end > size:
        raise MrsrError(f"{path} is truncated ({size} bytes, header announces {8 + n + end})")
    try:
        meta = json.loads(raw_meta["mrsr"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise MrsrError(f"{path} has no mrsr metadata; not an mrsr model file") from None
    if not isinstance(meta, dict):
        raise MrsrError(f"{path}: the mrsr metadata is not an object")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise MrsrError(f"{path}: model metadata lacks {', '.join(missing)}")
    if meta["format"] != FORMAT or meta["format_version"] != FORMAT_VERSION:
        raise MrsrError(f"{path}: unsupported model format {meta['format']!r} v{meta['format_version']}")
    return check_metadata(meta, path), header


def load_model(path):
    """Rebuild the network named in the metadata and load its weights (no pickle)."""
    from safetensors.torch import load_file

    from mrsr_cli.models import ARCHITECTURES, build_model

    import torch

    meta, index = read_header(path)
    if meta["architecture"] not in ARCHITECTURES:
        raise MrsrError(f"{path}: unknown architecture {meta['architecture']!r}")
    try:
        with torch.device("meta"):  # shapes without memory: a small file claiming a huge network is refused here
            skeleton = build_model(meta["architecture"], dict(meta["params"]))
    except (TypeError, ValueError) as exc:
        raise MrsrError(f"{path}: invalid architecture parameters ({exc})") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v["shape"]) for k, v in index.items()}
    if expected != found:
        raise MrsrError(f"{path}: weights do not match the architecture in its metadata")
    net = build_model(meta["architecture"], dict(meta["params"]))
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise MrsrError(f"{path}: cannot read weights ({exc})") from None
    bad = [k for k, v in state.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise MrsrError(f"{path}: non-finite weights in {bad[0]} (a diverged training?); this model cannot be used")
    net.load_state_dict(state)
    net.eval()
    return net, meta
