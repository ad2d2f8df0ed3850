#!/usr/bin/env python3
"""Round 16's scores: spline, the shipped default and a PSF-aware candidate at x2 from LR images
simulated with round 15's five PSFs, the candidate told each PSF (`upscale --input-psf SHAPE
--input-fwhm MM`, the values given to `simulate`), on round 10's volumes.  Writes
results/<model>.json and the 'psf-input-<model>' section of benchmarks/experiments/LOG.md, with the ship
rule's verdict.  Usage: score.py MODEL [--report-only]"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import candidate_results, experiment_round, stamp, write_section  # noqa: E402

round10, round15 = experiment_round("10-scale-robust"), experiment_round("15-psf")
PSFS, SIMULATE_PSF = round15.PSFS, next(iter(round15.PSFS))
RULE_VOLUMES, TEST_VOLUME = round15.RULE_VOLUMES, "Colin27, 1 mm (test)"


def told_psf(psf: str, crop) -> list:
    """The candidate's ``upscale`` options for the LR image of ``round15.psf_options(psf, crop)``:
    the same shape and FWHM (mm)."""
    simulate = round15.psf_options(psf, crop)
    return ["--input-psf", simulate[simulate.index("--psf") + 1], "--input-fwhm", simulate[simulate.index("--fwhm") + 1]]


def measure(model: str) -> dict:
    cases = {case: (name, box, list(PSFS)) for case, (name, box, _) in round10.CASES.items()}
    return round10.measure(model, cases, round15.psf_options, told_psf)


def verdict(results: dict, tolerance: float = 0.15) -> tuple[bool, list[str]]:
    """The ship rule (fixed before the run): told the true PSF, the candidate's worst gain over
    spline across the PSFs is >= 0 dB on both validation volumes; at simulate's PSF it loses at
    most ``tolerance`` dB against the default on both (round 17: within it either way);
    Colin27 at simulate's PSF stays >= +3.8 dB."""
    def gain(key, tag):
        return results[key][tag] - results[key]["spline"]

    worst = {v: min(gain(k, "candidate") for k in results if k.startswith(v)) for v in RULE_VOLUMES}
    own = {v: results[f"{v} | {SIMULATE_PSF}"]["candidate"] - results[f"{v} | {SIMULATE_PSF}"]["default"] for v in RULE_VOLUMES}
    colin = gain(f"{TEST_VOLUME} | {SIMULATE_PSF}", "candidate")
    ship = all(w >= 0 for w in worst.values()) and all(c >= -tolerance for c in own.values()) and colin >= 3.8
    said = [f"worst gain over spline told the PSF {', '.join(f'{w:+.2f}' for w in worst.values())} (>= 0)",
            f"change against the default at simulate's PSF {', '.join(f'{c:+.2f}' for c in own.values())} (>= {-tolerance:+.2f})",
            f"Colin27 at simulate's PSF {colin:+.2f} (>= +3.8)"]
    return ship, said


ABOUT = ("fine-tuned with the stage-3 recipe plus `--psf-input --augment ...,psf`: each LR patch's PSF a Gaussian or "
         "box of FWHM 0.25-1.5 LR voxels, simulate's own in one patch of three, at most 32 min")


def report(model: str, results: dict, round_dir: str = "16-psf-input", about: str = ABOUT, tolerance: float = 0.15) -> None:
    """The table and the rule's verdict, into the 'psf-input-<model>' section; ``about`` says how
    the candidate was trained."""
    ship, said = verdict(results, tolerance)
    lines = [f"## PSF-aware default {Path(model).stem} (issue 21, round {round_dir.split('-')[0]})", "",
             f"`bash benchmarks/experiments/{round_dir}/run.sh` (candidate `{Path(model).name}`: the shipped default with "
             f"3 zero-initialised PSF channels, {about}). x2 from LR images made by `mrsr simulate --psf SHAPE --fwhm` "
             "with the PSF of each row; the candidate "
             "is told it (`upscale --input-psf SHAPE --input-fwhm MM`), the default cannot be. PSNR (dB, head mask), crops "
             "as in round 10; Colin27 is reported only. " + stamp(), "", *round15.psf_table(results)]
    lines += ["", "Ship rule (fixed before the run), on the deepmriprep and MNI152NLin6Asym right halves: "
              + "; ".join(said) + f": **{'ship' if ship else 'do not ship'}**."]
    write_section(f"psf-input-{Path(model).stem}", "\n".join(lines))


if __name__ == "__main__":
    model, results = candidate_results("16-psf-input", measure)
    report(model, results)
