#!/usr/bin/env python3
"""Round 13's scores: a candidate against the shipped default and spline on the three-brain 1 mm
validation set (MNI152NLin6Asym right half, SRI24, pydeface mean head: the last two never trained
on by either model), on the 0.5 mm validation half, and on Colin27 (reported only).  Round 10's
``measure`` does the work.  Writes results/<model>.json and the 'unseen-brains-<model>' section of
benchmarks/experiments/LOG.md.  Usage: score.py MODEL [--report-only]"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import candidate_results, experiment_round, stamp, write_section  # noqa: E402

round10 = experiment_round("10-scale-robust")

VF = ["2,2,2", "2,2,3", "3,3,3", "1,1,4"]
VALIDATION_1MM = {  # name: (file, crop to the head or None, factors); the rule's 12 cases
    "MNI152NLin6Asym right half, 1 mm": ("mni152nlin6asym_t1_1mm_right.nii.gz", None, VF),
    "SRI24, 1 mm (never trained on)": ("sri24_t1_1mm.nii", (slice(12, 224), slice(None), slice(None)), VF),
    "pydeface mean head, 1 mm (never trained on)": ("pydeface_mean_head_t1.nii.gz",
                                                    (slice(None), slice(22, 254), slice(0, 216)), VF),
}
CASES = {**VALIDATION_1MM,
         "deepmriprep right half, 0.5 mm": round10.CASES["deepmriprep right half, 0.5 mm"],
         "Colin27, 1 mm (test)": round10.CASES["Colin27, 1 mm (test)"]}
HALF_MM_X2 = "deepmriprep right half, 0.5 mm | 2,2,2"

ABOUT = {
    "C1": "the shipped default fine-tuned on ICBM152 2009a, the MNI152NLin6Asym left half, the deepmriprep 0.5 mm "
          "left half and ROBEX (each drawn as often), stage-3 factors, every HR patch resampled to a random voxel size "
          "in 0.5-1.5 mm but never finer than its volume's own (`--voxel-size-range 0.5:1.5 --coarsen-only`), "
          "12 epochs x 1600 patches at 5e-5, at most 42 min.",
}


def verdict(results: dict) -> tuple[float, float, bool]:
    """``(mean 1 mm change, 0.5 mm x2 change, ship)``: candidate minus default PSNR (dB), the
    first averaged over the 12 cases of VALIDATION_1MM; the rule fixed in run.sh before the run."""
    val = [r for k, r in results.items() if k.split(" | ")[0] in VALIDATION_1MM]
    assert len(val) == 12, len(val)
    val_change = sum(r["candidate"] - r["default"] for r in val) / len(val)
    half_mm = results[HALF_MM_X2]["candidate"] - results[HALF_MM_X2]["default"]
    return val_change, half_mm, val_change >= 0.10 and half_mm >= -0.10


def report(model: str, results: dict) -> None:
    val_change, half_mm, ship = verdict(results)
    lines = [f"## Scale-robust fine-tune {Path(model).stem}, judged on unseen brains (issue 21, round 13)", "",
             f"`bash benchmarks/experiments/13-unseen-brains/run.sh` (candidate `{Path(model).name}`): "
             f"{ABOUT.get(Path(model).stem, '')} PSNR (dB, head mask) of the whole (cropped) volume; gains over cubic "
             "spline. SRI24 and the pydeface mean head were never trained on by either model; Colin27 is reported, "
             "never used to decide. Upscale time: one CLI process, 2 flip passes, start-up and I/O included. "
             + stamp(), "", *round10.table(results),
              "", "Rule (fixed before the run): the candidate's PSNR minus the default's, averaged over the three 1 mm "
              f"validation brains at four factors, >= +0.10 dB (measured {val_change:+.2f}), and at 0.5 mm x2 it "
              f"loses at most 0.10 dB (measured {half_mm:+.2f}): **{'ship' if ship else 'do not ship'}**."]
    write_section(f"unseen-brains-{Path(model).stem}", "\n".join(lines))


if __name__ == "__main__":
    model, results = candidate_results("13-unseen-brains", lambda m: round10.measure(m, CASES))
    report(model, results)
