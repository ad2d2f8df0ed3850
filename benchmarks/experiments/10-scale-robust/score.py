#!/usr/bin/env python3
"""Round 10's scores: a candidate model against the shipped default and spline, on the two
validation halves (the rule) and on Colin27 (reported only); writes results/<model>.json and the
'scale-robust-<model>' section of benchmarks/experiments/LOG.md.  Usage: score.py MODEL [--report-only]"""

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import DATA, MRSR, candidate_results, stamp, timed, write_section  # noqa: E402

CASES = {  # name: (file, crop or None, factors)
    "deepmriprep right half, 0.5 mm": ("deepmriprep_t1_05mm_right.nii.gz", (slice(0, 168), slice(40, 376), slice(30, 300)),
                                       ["2,2,2", "2,2,3", "1,1,4"]),
    "MNI152NLin6Asym right half, 1 mm": ("mni152nlin6asym_t1_1mm_right.nii.gz", None, ["2,2,2", "2,2,3", "3,3,3", "1,1,4"]),
    "Colin27, 1 mm (test)": ("colin27_ch2.nii.gz", (slice(0, 180), slice(0, 216), slice(0, 180)), ["2,2,2", "2,2,3", "1,1,4"]),
}


RULE_CASE, RULE_VAL = "deepmriprep right half, 0.5 mm | 2,2,2", "MNI152NLin6Asym right half, 1 mm"


def factor_only(factor: str, crop) -> list:
    """``simulate`` options of a case's condition in round 10: the factor, simulate's own PSF."""
    return ["--factor", factor]


def measure(model: str, cases: dict = CASES, simulate_options=factor_only, candidate_options=lambda condition, crop: []) -> dict:
    """PSNR (dB, head mask) of spline, default and ``model`` per case and condition of ``cases``
    (name: (file in DATA, crop or None, conditions)), each condition's LR image made by ``simulate``
    with ``simulate_options(condition, cropped image)`` and the candidate's upscale given
    ``candidate_options(condition, cropped image)`` too, and the wall time (s, CLI start-up and
    I/O included) of each upscale."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case, (name, box, factors) in cases.items():
            img = nib.load(DATA / name)
            crop = img.slicer[box] if box else img
            hr = tmp / "hr.nii.gz"
            nib.save(crop, str(hr))
            for factor in factors:
                lr = tmp / "lr.nii.gz"
                timed(MRSR + ["simulate", hr, lr, *simulate_options(factor, crop), "--force"])
                outs, walls = {}, {}
                for tag, opts in (("spline", ["--method", "spline"]), ("default", []),
                                  ("candidate", ["--model", model, *candidate_options(factor, crop)])):
                    outs[tag] = tmp / f"{tag}.nii.gz"
                    walls[tag], _, _ = timed(MRSR + ["upscale", lr, outs[tag], "--like", hr, "--force", *opts])
                rows = json.loads(timed(MRSR + ["evaluate", hr, *outs.values(), "--json"])[2])
                results[f"{case} | {factor}"] = {**{t: r["psnr"] for t, r in zip(outs, rows)},
                                                 "seconds": walls, "shape": list(crop.shape)}
                print(case, factor, {t: round(r["psnr"], 2) for t, r in zip(outs, rows)}, walls, flush=True)
    return results


def table(results: dict) -> list[str]:
    """Markdown rows: PSNR of spline, default and candidate per case and factor, the gains over
    spline, the candidate's change against the default, and both upscale times."""
    lines = ["| volume | factor | spline | default | candidate | default over spline | candidate over spline | "
             "candidate − default | upscale s (default / candidate) |", "|---|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        case, factor = key.split(" | ")
        lines.append(f"| {case} | ({factor}) | {r['spline']:.2f} | {r['default']:.2f} | {r['candidate']:.2f} | "
                     f"{r['default'] - r['spline']:+.2f} | **{r['candidate'] - r['spline']:+.2f}** | "
                     f"{r['candidate'] - r['default']:+.2f} | "
                     f"{r['seconds']['default']:.1f} / {r['seconds']['candidate']:.1f} |")
    return lines


def report(model: str, results: dict, about: str) -> None:
    """The rule's verdict and the table, into the 'scale-robust-<model>' section; ``about``
    says how the candidate was trained."""
    x2_gain = results[RULE_CASE]["candidate"] - results[RULE_CASE]["default"]
    val = [r for k, r in results.items() if k.startswith(RULE_VAL)]
    val_change = sum(r["candidate"] - r["default"] for r in val) / len(val)
    ship = x2_gain >= 0.5 and val_change >= -0.10
    lines = [f"## Scale-robust fine-tune {Path(model).stem} (issue 21, round 10)", "",
             f"`bash benchmarks/experiments/10-scale-robust/run.sh` (candidate `{Path(model).name}`): {about} "
             "PSNR (dB, head mask) of the whole (cropped) volume; "
             "gains over cubic spline. Colin27 is reported, never used to decide. Upscale time: one CLI process, "
             "2 flip passes, start-up and I/O included. " + stamp(), "", *table(results),
              "", f"Rule (fixed before the run): candidate beats the default at 0.5 mm x2 by >= 0.5 dB "
              f"(measured {x2_gain:+.2f}) and loses at most 0.10 dB of mean validation PSNR on the MNI152NLin6Asym "
              f"right half (measured {val_change:+.2f}): **{'ship' if ship else 'do not ship'}**."]
    write_section(f"scale-robust-{Path(model).stem}", "\n".join(lines))


SIX_BRAINS = ("ICBM152 2009a, the left halves of MNI152NLin6Asym and of the deepmriprep 0.5 mm template, the pydeface "
              "mean head, SRI24, ROBEX")
ABOUT = {  # how each candidate of run.sh was trained
    "S1": f"the shipped default fine-tuned on six brains ({SIX_BRAINS}; each drawn as often) with every HR patch "
          "resampled to a random voxel size in 0.5-1.5 mm (`train --voxel-size-range 0.5:1.5`), 8 epochs x 1600 "
          "patches at 5e-5, at most 30 min.",
    "S2": "as S1, with ICBM152 2009a and the MNI152NLin6Asym left half listed twice, so that they are drawn for half "
          "of the patches, as in the default's own training (S1 drew them for a third), and with the output voxel size "
          "as three more input channels (`--voxel-size-input`, zero-initialised), so that one network need not "
          "compromise between voxel scales.",
}

if __name__ == "__main__":
    model, results = candidate_results("10-scale-robust", measure)
    report(model, results, ABOUT.get(Path(model).stem, ""))
