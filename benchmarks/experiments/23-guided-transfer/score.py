#!/usr/bin/env python3
"""Round 23's scores on the right T2 half of SPM's avg152 pair: `upscale --guidance transfer` with
the right T1 and with wrong references, against the same network without a reference (the
builtin `default`, and round 14's U), all with the default data consistency.  Writes
results/scores.json and the 'guided-transfer' section of benchmarks/experiments/LOG.md with the bar's
verdict (NOTES.md)."""

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import DATA, MRSR, ROOT, stamp, timed, write_section  # noqa: E402

sys.path.insert(0, str(ROOT))
from mrsr_cli.methods.consistency import make_consistent  # noqa: E402
from mrsr_cli.methods.guidance import transfer  # noqa: E402
from mrsr_cli.data.interpolate import resample  # noqa: E402
from mrsr_cli.data.io import load_volume  # noqa: E402
from mrsr_cli.evaluation.metrics import compare, head_mask  # noqa: E402

HALVES = DATA / "guided-t2"
U = DATA / "guided-t2-edges" / "U.safetensors"
FACTORS = ("3,3,3", "4,4,4", "1,1,4")
WRONG = ("mirrored T1", "noise")


def references(tmp: Path) -> dict:
    """The right T1 and the other references, as NIfTI files on the right half's grid."""
    t1_path = HALVES / "spm_t1_right.nii.gz"
    img = nib.load(t1_path)
    t1 = np.asarray(img.dataobj, dtype=np.float32)
    grid = load_volume(t1_path).grid
    icbm = load_volume(DATA / "icbm152_2009a_t1.nii.gz")
    arrays = {"mirrored T1": t1[::-1].copy(),
              "noise": np.random.default_rng(0).uniform(0, t1.max(), t1.shape).astype(np.float32),
              "T1 shifted 2 mm": np.roll(t1, 1, axis=1),
              "ICBM 2009a T1 (another brain)": resample(icbm.data, icbm.grid, grid, order=3)}
    paths = {"T1": t1_path}
    for name, data in arrays.items():
        paths[name] = tmp / f"ref{len(paths)}.nii.gz"
        nib.save(nib.Nifti1Image(data, img.affine), str(paths[name]))
    return paths


def score_factor(factor: str, refs: dict, tmp: Path, truth, mask) -> dict:
    hr = HALVES / "spm_t2_right.nii.gz"
    scores = {}
    for noise, lr in (("", tmp / "lr.nii.gz"), (" (1 % noise)", tmp / "lr_noisy.nii.gz")):
        timed(MRSR + ["simulate", hr, lr, "--factor", factor, "--force", *(["--noise", "0.01", "--seed", "0"] if noise else [])])
        runs = {"default": []}
        if not noise:
            runs = {"spline": ["--method", "spline"], "default": [], "U": ["--model", U]}
            runs.update({f"default + transfer, {k}": ["--guidance", "transfer", "--reference", v] for k, v in refs.items()})
            runs.update({f"U + transfer, {k}": ["--model", U, "--guidance", "transfer", "--reference", refs[k]]
                         for k in ("T1", *WRONG)})
        else:
            runs["default + transfer, T1"] = ["--guidance", "transfer", "--reference", refs["T1"]]
        for tag, opts in runs.items():
            out = tmp / "out.nii.gz"
            timed(MRSR + ["upscale", lr, out, "--like", hr, "--force", "-q", *opts])
            scores[tag + noise] = compare(truth.data, load_volume(out).data, mask)
        if not noise:  # no network: the spline, the transfer, then consistency, through the library
            timed(MRSR + ["upscale", lr, tmp / "spline.nii.gz", "--like", hr, "--method", "spline", "--force", "-q"])
            volume = load_volume(lr)
            x, _ = transfer(load_volume(tmp / "spline.nii.gz").data, volume, load_volume(refs["T1"]).data, truth.grid,
                            upscale=lambda v, grid: resample(v.data, v.grid, grid, order=3))
            x, _ = make_consistent(x, volume, truth.grid, "auto")
            scores["spline + transfer, T1"] = compare(truth.data, x, mask)
    return {k: {"psnr": v["psnr"], "ssim": v["ssim"]} for k, v in scores.items()}


def verdict(results: dict, base: str) -> tuple[bool, float, float]:
    def gain(factor, tag):
        return results[factor][tag]["psnr"] - results[factor][base]["psnr"]

    best = max(gain(f, f"{base} + transfer, T1") for f in FACTORS)
    worst = min(gain(f, f"{base} + transfer, {w}") for f in FACTORS for w in WRONG)
    return best >= 1.0 and worst >= -0.5, best, worst


TITLE = "## Guidance by transfer: the reference fitted to the input (issue 21, round 23)"
METHOD = ("no training: a local linear fit of the LR input on the reference degraded by the input's PSF, blended in by "
          "its R², then data consistency")


def main(results_dir: Path = HERE / "results", section: str = "guided-transfer", title: str = TITLE,
         method: str = METHOD) -> None:
    """Scores the transfer as `mrsr upscale --guidance transfer` does it now; round 24 calls this
    with its own folder and section (the check one scale down is in the code by then)."""
    truth = load_volume(HALVES / "spm_t2_right.nii.gz")
    mask = head_mask(truth.data)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        refs = references(tmp)
        for factor in FACTORS:
            results[factor] = score_factor(factor, refs, tmp, truth, mask)
            print(factor, {k: round(v["psnr"], 2) for k, v in results[factor].items()}, flush=True)
    results_dir.mkdir(exist_ok=True)
    (results_dir / "scores.json").write_text(json.dumps(results, indent=1))
    lines = [title, "",
             f"`bash benchmarks/experiments/{results_dir.parent.name}/run.sh`: `upscale --guidance transfer` ({method}) "
             "on the right T2 half of SPM's avg152 pair, against the same network without a reference; all "
             "with the default `--consistency auto`. Parameters fixed on the left half (NOTES.md). PSNR dB against the "
             "network without a reference (its own PSNR in the first row of each block), head mask. " + stamp(), ""]
    for base in ("default", "U"):
        tags = [t for t in results[FACTORS[0]] if t.startswith(f"{base} + transfer") and "noise)" not in t]
        lines += [f"| {base}: factor | {base} (PSNR) | " + " | ".join(t.split(", ", 1)[1] for t in tags) + " |",
                  "|---|---|" + "---|" * len(tags)]
        for f in FACTORS:
            row = results[f]
            lines.append(f"| ({f}) | {row[base]['psnr']:.2f} | "
                         + " | ".join(f"{row[t]['psnr'] - row[base]['psnr']:+.2f}" for t in tags) + " |")
        met, best, worst = verdict(results, base)
        lines += ["", f"Bar with {base}: best real-T1 gain {best:+.2f} dB (≥ +1.0), worst wrong reference (mirrored T1, "
                  f"noise) {worst:+.2f} dB (≥ −0.5): **{'met' if met else 'not met'}**.", ""]
    lines += ["| factor | spline | spline + transfer, T1 | default, 1 % noise | default + transfer, T1, 1 % noise |",
              "|---|---|---|---|---|"]
    for f in FACTORS:
        row = results[f]
        lines.append(f"| ({f}) | {row['spline']['psnr']:.2f} | {row['spline + transfer, T1']['psnr']:.2f} | "
                     f"{row['default (1 % noise)']['psnr']:.2f} | {row['default + transfer, T1 (1 % noise)']['psnr']:.2f} |")
    write_section(section, "\n".join(lines))


if __name__ == "__main__":
    main()
