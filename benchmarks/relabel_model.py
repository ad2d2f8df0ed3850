#!/usr/bin/env python3
"""Copy a model file under another name: the metadata's ``name`` (and the recorded recipe's)
set to NAME, every tensor byte for byte the same (checked), written atomically.  For a
candidate trained under a round's name that ships as a builtin.

Usage: python benchmarks/relabel_model.py SRC.safetensors DST.safetensors NAME"""

import json
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mrsr_cli.data.io import atomic_write  # noqa: E402


def tensors_and_meta(path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="np") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, json.loads(fh.metadata()["mrsr"])


def relabel(src, dst, name: str) -> None:
    tensors, meta = tensors_and_meta(src)
    meta["name"] = name
    if "name" in meta.get("training", {}):
        meta["training"]["name"] = name
    atomic_write(Path(dst), lambda tmp: save_file(tensors, str(tmp), metadata={"mrsr": json.dumps(meta)}))
    copied, _ = tensors_and_meta(dst)
    assert copied.keys() == tensors.keys() and all(np.array_equal(copied[k], tensors[k]) for k in tensors)


if __name__ == "__main__":
    relabel(sys.argv[1], sys.argv[2], sys.argv[3])
