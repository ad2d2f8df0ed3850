#!/usr/bin/env python3
"""Round 19's scores: the shipped default with and without data consistency (`upscale
--consistency auto` against `off`), and spline, on round 10's volumes: noiseless at round 10's
factors, with Rician noise at x2, and at x2 from PSFs the default does not assume.  Writes
results/default.json and the 'consistency' section of benchmarks/experiments/LOG.md with the ship rule's
verdict.  Usage: score.py default [--report-only]"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import candidate_results, experiment_round, stamp, write_section  # noqa: E402

round10 = experiment_round("10-scale-robust")
NOISE = ("0.005", "0.01", "0.02", "0.05")
OTHER_PSFS = {"PSF Gaussian FWHM 0.5 voxel": ("gaussian", 0.5), "PSF box 1 voxel": ("box", 1.0)}
RULE_VOLUMES = ("deepmriprep right half, 0.5 mm", "MNI152NLin6Asym right half, 1 mm")
TEST_VOLUME = "Colin27, 1 mm (test)"


def conditions(volume: str, factors: list[str]) -> list[str]:
    """Noiseless at every factor; x2 with each noise level and each other PSF (Colin27: 1 % noise only)."""
    noisy = ["0.01"] if volume == TEST_VOLUME else list(NOISE)
    others = [] if volume == TEST_VOLUME else list(OTHER_PSFS)
    return factors + [f"2,2,2 noise {n}" for n in noisy] + [f"2,2,2 {p}" for p in others]


def simulate_options(condition: str, crop) -> list:
    """``simulate`` options of a condition: the factor, then ``--noise`` (seed 1) or another PSF."""
    factor, _, rest = condition.partition(" ")
    options = ["--factor", factor]
    if rest.startswith("noise"):
        options += ["--noise", rest.split()[1], "--seed", "1"]
    elif rest:
        shape, scale = OTHER_PSFS[rest]
        options += ["--psf", shape, "--fwhm", f"{scale * 2 * float(crop.header.get_zooms()[0]):g}"]
    return options


def measure(model: str) -> dict:
    cases = {case: (name, box, conditions(case, factors)) for case, (name, box, factors) in round10.CASES.items()}
    return round10.measure(model, cases, simulate_options, lambda condition, crop: ["--consistency", "auto"])


def verdict(results: dict) -> tuple[bool, list[str]]:
    """The ship rule (NOTES.md, fixed before the run): on both validation halves, noiseless at
    every factor auto >= off - 0.01 dB; with noise auto >= off - 0.05 dB.  (The time count is
    checked on the whole-brain upscale, outside this table.)"""
    def change(key):
        return results[key]["candidate"] - results[key]["default"]

    keys = [k for k in results if k.startswith(RULE_VOLUMES)]
    clean = [change(k) for k in keys if " " not in k.split(" | ")[1]]
    noisy = [change(k) for k in keys if "noise" in k]
    ship = min(clean) >= -0.01 and min(noisy) >= -0.05
    said = [f"noiseless, the smallest change is {min(clean):+.2f} dB (>= -0.01)",
            f"with noise, {min(noisy):+.2f} dB (>= -0.05)"]
    return ship, said


def report(results: dict, folder: str = "19-consistency", section: str = "consistency",
           title: str = "Data consistency after the network", about: str = "", timing: str = "") -> None:
    """The table and the rule's verdict into ``section`` of benchmarks/experiments/LOG.md; ``about`` says what
    the round changed, ``timing`` the whole-brain time count's sentence."""
    ship, said = verdict(results)
    lines = [f"## {title} (issue 21, round {folder.split('-')[0]})", "",
             f"`bash benchmarks/experiments/{folder}/run.sh`. Candidate: the shipped default with `upscale "
             "--consistency auto`. It back-projects the output onto the input's observation model and stops at the "
             f"input's estimated noise level (`mrsr_cli/methods/consistency.py`){about}. It is compared with the same model without "
             "it (`off`, the default column). LR images are made by `mrsr simulate`: noiseless at round 10's factors; "
             "at ×2 with Rician noise (fraction of the 99.5th percentile, seed 1); and at ×2 from PSFs the model does not "
             "assume. PSNR (dB, head mask), crops as in round 10; Colin27 is reported only. " + stamp(), "",
             *round10.table(results), "",
             "Ship rule (NOTES.md, fixed before the run), on the deepmriprep and MNI152NLin6Asym right halves: "
             + "; ".join(said) + f": **{'ship' if ship else 'do not ship'}** (and the whole-brain time, "
             "measured separately)." + timing]
    write_section(section, "\n".join(lines))


if __name__ == "__main__":
    _, results = candidate_results("19-consistency", measure)
    report(results)
