#!/usr/bin/env python3
"""Training throughput and curves of the builtin models (and the SRCNN3D baseline if present),
read from their safetensors metadata and JSONL logs.  Writes the 'training' section of
docs/benchmarks.md.   Usage: python benchmarks/training_report.py
"""

import json

import numpy as np

from _common import DATA, ROOT, write_section
from mrsr_cli.models.store import read_header

models = [("default, stage 1 (×2; .data, not shipped)", DATA / "models/recnn-x2-stage1.safetensors"),
          ("default, stage 2 (multiscale fine-tune; .data, not shipped)", DATA / "lr1e4/D24.safetensors"),
          ("default (stage 3: thick slices weighted up)", ROOT / "share/models/mrsr-recnn-t1w.safetensors"),
          ("guided", ROOT / "share/models/mrsr-recnn-guided.safetensors"),
          ("SRCNN3D baseline", DATA / "models/srcnn3d.safetensors")]
lines = ["## Training (issue 3)", "",
         "`python benchmarks/training_report.py` — from each model's metadata and `*.log.jsonl`; "
         "trained with `mrsr train` on the machine named in `share/models/README.md` (2 cores, bf16).", "",
         "| model | architecture | training data | iterations × batch | wall (s) | patches/s (iterations only) | best val PSNR (dB) | validated on | stopped |",
         "|---|---|---|---|---|---|---|---|---|"]
for label, path in models:
    if not path.exists():
        continue
    meta, _ = read_header(path)
    t = meta["training"]
    log = path.with_name(path.name.replace(".safetensors", ".log.jsonl"))
    rate = "—"
    if log.exists():
        rates = [r["patches_per_s"] for r in map(json.loads, log.read_text().splitlines()) if "patches_per_s" in r]
        rate = f"{np.median(rates):.1f}" if rates else "—"
    arch = f"{meta['architecture']} {meta['params']}"
    best = f"{t['best_val_psnr']:.2f}" if t.get("best_val_psnr") else "—"
    data = ", ".join(d["file"] for d in t.get("data", []))
    val = ", ".join(t.get("validation") or []) or "—"
    lines.append(f"| {label} | {arch} | {data} | {t['iterations']} × {t['batch']} | {t['seconds']:.0f} | {rate} | {best} | {val} | {t['stopped']} |")
write_section("training", "\n".join(lines))
