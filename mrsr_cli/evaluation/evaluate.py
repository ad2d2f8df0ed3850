"""File-level evaluation behind ``mrsr evaluate``: grids checked, metrics per test image, and
comparisons of methods across subjects from a manifest (:func:`evaluate_manifest`).

Example::

    rows = evaluate_files("ref.nii.gz", ["spline.nii.gz", "cnn.nii.gz"])
    write_csv("scores.csv", rows)
    result = evaluate_manifest("cases.tsv", baseline="spline")
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.data.io import atomic_write, load_volume
from mrsr_cli.evaluation.metrics import compare, head_mask


def evaluate_files(reference, tests, mask=None) -> list[dict]:
    """PSNR/SSIM of each test image against ``reference`` inside ``mask`` (or a head mask)."""
    ref = load_volume(reference, what="reference")
    return evaluate_volumes(ref, ((str(test), load_volume(test, what="test image")) for test in tests),  # one at a time
                            None if mask is None else (str(mask), load_volume(mask, what="mask")), str(reference))


def evaluate_volumes(ref, tests, mask=None, reference_name: str = "the reference") -> list[dict]:
    """The in-memory core of :func:`evaluate_files`: ``tests`` (an iterable) and ``mask`` are
    ``(name, Volume)`` pairs, every one on ``ref``'s grid."""
    if mask is not None:
        name, mvol = mask
        diff = ref.grid.describe_difference(mvol.grid)
        if diff:
            raise MrsrError(f"mask {name} is not on the reference grid: {diff}")
        region = mvol.data > 0
        if not region.any():
            raise MrsrError(f"mask {name} is empty")
    else:
        region = head_mask(ref.data)
    rows = []
    for name, vol in tests:
        diff = ref.grid.describe_difference(vol.grid)
        if diff:
            raise MrsrError(f"{name} is not on the reference grid ({diff}); resample it with 'mrsr upscale --like {reference_name}'")
        rows.append({"image": name, **compare(ref.data, vol.data, region)})
    return rows


def write_csv(path, rows: list[dict]) -> None:
    """Write the rows as CSV atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(path), lambda tmp: tmp.write_text(buffer.getvalue()))


# ----------------------------------------------------------------------------- comparisons across subjects
MANIFEST_COLUMNS = ("subject", "method", "reference", "image")


def read_manifest(path) -> list[dict]:
    """Rows of a tab-separated manifest with the header ``subject method reference image``
    (extra columns are ignored); relative paths are taken from the manifest's folder.
    One-line errors for a missing file or column, an empty manifest and a repeated
    (subject, method)."""
    path = Path(path)
    if not path.is_file():
        raise MrsrError(f"manifest not found: {path}")
    from mrsr_cli.data.io import read_text

    with io.StringIO(read_text(path, "manifest"), newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"manifest {path} lacks column(s) {', '.join(missing)} (tab-separated header: "
                             f"{' '.join(MANIFEST_COLUMNS)})")
        rows, seen = [], set()
        for line, row in enumerate(reader, start=2):
            if not any((row.get(c) or "").strip() for c in MANIFEST_COLUMNS):
                continue
            if any(not (row.get(c) or "").strip() for c in MANIFEST_COLUMNS):
                raise UsageError(f"manifest {path}, line {line}: every row needs {', '.join(MANIFEST_COLUMNS)}")
            key = (row["subject"].strip(), row["method"].strip())
            if key in seen:
                raise UsageError(f"manifest {path}, line {line}: subject {key[0]!r} has method {key[1]!r} twice")
            seen.add(key)
            rows.append({"subject": key[0], "method": key[1],
                         **{c: str((path.parent / row[c].strip()) if not Path(row[c].strip()).is_absolute() else row[c].strip())
                            for c in ("reference", "image")}})
    if not rows:
        raise UsageError(f"manifest {path} has no rows")
    for row in rows:
        for c in ("reference", "image"):
            if not Path(row[c]).is_file():
                raise MrsrError(f"manifest {path}: {c} of subject {row['subject']} ({row['method']}) not found: {row[c]}")
    return rows


def evaluate_manifest(path, baseline: str = "spline", mask=None) -> dict:
    """Score every row of a manifest and compare the methods across subjects.

    Returns ``{"rows", "summary", "tests", "anova", "notes"}``: per-row PSNR/SSIM (each image
    against its own reference, inside ``mask`` or the reference's head mask), per-method mean ±
    sd, paired tests of every method against ``baseline`` (:func:`mrsr_cli.evaluation.statistics.paired_tests`)
    and the two-way ANOVA, for PSNR and for SSIM.
    """
    from mrsr_cli.evaluation.statistics import paired_tests, two_way_anova

    rows = read_manifest(path)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if baseline not in methods:
        raise UsageError(f"baseline {baseline!r} is not a method of the manifest (methods: {', '.join(methods)})")
    scored = []
    for reference, group in _group_by_reference(rows):
        for row, result in zip(group, evaluate_files(reference, [r["image"] for r in group], mask)):
            scored.append({"subject": row["subject"], "method": row["method"], **result})
    notes = []
    summary, tests, anova = {}, {}, {}
    for metric in ("psnr", "ssim"):
        scores = {m: {r["subject"]: r[metric] for r in scored if r["method"] == m} for m in methods}
        for m, by_subject in scores.items():
            values = np.array(list(by_subject.values()))
            summary.setdefault(m, {"n": len(values)})
            summary[m][f"{metric}_mean"] = float(values.mean())
            summary[m][f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else None
        tests[metric] = paired_tests(scores, baseline)
        anova[metric] = two_way_anova(scores)
    for m, r in tests["psnr"].items():
        if "skipped" in r:
            notes.append(f"{m}: tests skipped, {r['skipped']}")
    if "skipped" in anova["psnr"]:
        notes.append(f"ANOVA skipped: {anova['psnr']['skipped']}")
    return {"baseline": baseline, "rows": scored, "summary": summary, "tests": tests, "anova": anova, "notes": notes}


def _group_by_reference(rows):
    groups: dict = {}
    for row in rows:
        groups.setdefault(row["reference"], []).append(row)
    return groups.items()


def write_box_plot(path, result: dict, metric: str = "psnr") -> None:
    """A box plot of ``metric`` per method with each subject's points, written atomically (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(result["summary"])
    values = [[r[metric] for r in result["rows"] if r["method"] == m] for m in methods]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(methods), 4.2), dpi=120)
    ax.boxplot(values, showmeans=True)
    ax.set_xticks(range(1, len(methods) + 1), methods, rotation=20, ha="right")
    rng = np.random.default_rng(0)
    for i, v in enumerate(values, start=1):
        ax.scatter(i + rng.uniform(-0.08, 0.08, len(v)), v, s=12, color="k", alpha=0.6, zorder=3)
    ax.set_ylabel({"psnr": "PSNR (dB)", "ssim": "SSIM"}[metric])
    tests = result["tests"][metric]
    ax.set_title(f"{metric.upper()} per method, n = {max(len(v) for v in values)} subjects (baseline {result['baseline']})",
                 fontsize=9)
    for i, m in enumerate(methods, start=1):
        if m in tests and "p_t_holm" in tests[m]:
            ax.annotate(f"p={tests[m]['p_t_holm']:.2g}", (i, max(values[i - 1])), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=7)
    fig.tight_layout()

    def save(tmp):
        fig.savefig(tmp, format="png")

    atomic_write(Path(path), save)
    plt.close(fig)
