"""Helpers shared by the benchmark scripts: data paths, timed subprocess runs, docs sections."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MRSR_BENCH_DATA", ROOT / ".data"))
DOC = ROOT / "docs" / "benchmarks.md"
EXPERIMENT_LOG = ROOT / "benchmarks" / "experiments" / "LOG.md"
# The recipe rounds' sections: the experiment log, not the product's measurements.
EXPERIMENT_SECTIONS = {"recipe", "guided-t2", "scale-robust-S1", "guided-t2-large", "scale-robust-S2", "unseen-brains-C1",
                       "guided-t2-edges", "psf-P1", "psf-input-Q1", "psf-input-Q3", "consistency", "consistency-fov",
                       "guided-t2-consistency", "psf-aware-consistency", "guided-transfer", "guided-transfer-checked"}
MRSR = [sys.executable, "-m", "mrsr_cli.app.cli"]


def flair_like(t1):
    """A FLAIR-like remapping of a T1 image (dark CSF, grey brighter than white matter, dark
    background): the validation contrast for guided models and registration, used by no
    training run and not by the held-out benchmark (which has its own T2-like contrast)."""
    import numpy as np

    x = t1 / np.percentile(t1[t1 > 0], 99.5)
    y = np.exp(-((x - 0.55) / 0.25) ** 2) + 0.3 * x
    return (np.where(x > 0.05, y, 0) * 400).astype(np.float32)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu} ({cpu_flags()}), {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def cpu_flags() -> str:
    """Which of the flags that decide CPU speed here the CPU has: AVX-512, its bf16 dot products, AMX."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return "flags unknown"
    return ", ".join(f"{name} {'yes' if name in flags else 'no'}" for name in ("avx512f", "avx512_bf16", "amx_bf16"))


def timed(cmd, env=None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of that child process alone, stdout); raises on failure."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {err.read()}")
        return wall, usage.ru_maxrss / 1024.0, out.read()


def write_section(name: str, body: str) -> None:
    """Replace the ``<!-- BEGIN name -->...<!-- END name -->`` block of docs/benchmarks.md, or of the
    experiment log (benchmarks/experiments/LOG.md) for a recipe round's section (:data:`EXPERIMENT_SECTIONS`)."""
    doc = EXPERIMENT_LOG if name in EXPERIMENT_SECTIONS else DOC
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)
    print(body)


def experiment_round(folder: str):
    """The scorer (``score.py``) of another round of benchmarks/experiments as a module, e.g.
    ``experiment_round("11-guided-t2").score``: the folder names start with digits, so they
    cannot be imported by name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"round_{folder}", ROOT / "benchmarks/experiments" / folder / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def candidate_results(folder: str, measure) -> tuple[str, dict]:
    """``(model, results)`` for a round's ``score.py MODEL [--report-only]``: ``measure(model)``,
    saved to ``benchmarks/experiments/<folder>/results/<model stem>.json``, or with
    ``--report-only`` the saved results, so that a report can be rewritten without re-measuring."""
    import json

    model = sys.argv[1]
    out = ROOT / "benchmarks/experiments" / folder / "results" / f"{Path(model).stem}.json"
    if "--report-only" in sys.argv[2:]:
        return model, json.loads(out.read_text())
    results = measure(model)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    return model, results


def stamp() -> str:
    return f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}."


def quarter_slab(path: Path, out_dir: Path) -> Path:
    """The central 25 % of an image's axial slices (the 25 %-data regime of the priors and
    low-field benchmarks), written once into ``out_dir``; nibabel's slicer shifts the affine, so
    every voxel keeps its world position."""
    import nibabel as nib

    out = out_dir / Path(path).name.replace(".nii.gz", "_q25.nii.gz")
    if not out.exists():
        img = nib.load(path)
        nz = img.shape[2]
        start = int(round(nz * 0.375))
        nib.save(img.slicer[:, :, start:start + int(round(nz * 0.25))], str(out))
    return out
