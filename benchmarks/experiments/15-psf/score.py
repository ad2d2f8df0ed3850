#!/usr/bin/env python3
"""Round 15's scores: spline, the shipped default and a candidate at x2 from LR images simulated
with five PSFs (simulate's Gaussian of FWHM = one LR voxel, Gaussians of 0.5, 0.75 and 1.25 LR
voxels, a box of one LR voxel), on the deepmriprep right half (0.5 mm), the MNI152NLin6Asym right
half (1 mm) and Colin27 (1 mm; reported only).  Writes results/<model>.json and the
'psf-<model>' section of benchmarks/experiments/LOG.md.  Usage: score.py MODEL [--report-only]"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import candidate_results, experiment_round, stamp, write_section  # noqa: E402

round10 = experiment_round("10-scale-robust")
CASES = round10.CASES  # the volumes and crops of round 10
PSFS = {  # name: (shape, FWHM in LR voxels)
    "Gaussian, FWHM 1 voxel (simulate's)": ("gaussian", 1.0),
    "Gaussian, FWHM 0.5 voxel": ("gaussian", 0.5),
    "Gaussian, FWHM 0.75 voxel": ("gaussian", 0.75),
    "Gaussian, FWHM 1.25 voxel": ("gaussian", 1.25),
    "box, 1 voxel": ("box", 1.0),
}
RULE_VOLUMES = ("deepmriprep right half, 0.5 mm", "MNI152NLin6Asym right half, 1 mm")


def psf_options(psf: str, crop) -> list:
    """``simulate`` options for x2 with the PSF ``psf`` (a key of PSFS), its FWHM in mm from the
    crop's voxel size."""
    shape, scale = PSFS[psf]
    return ["--factor", "2", "--psf", shape, "--fwhm", f"{scale * 2 * float(crop.header.get_zooms()[0]):g}"]


def measure(model: str) -> dict:
    """Round 10's measure: PSNR (dB, head mask) of spline, default and ``model`` per volume and PSF, at x2."""
    cases = {case: (name, box, list(PSFS)) for case, (name, box, _) in CASES.items()}
    return round10.measure(model, cases, psf_options)


def psf_table(results: dict) -> list[str]:
    """Markdown rows: PSNR of spline, default and candidate per volume and LR PSF, and the gains over spline."""
    lines = ["| volume | LR PSF | spline | default | candidate | default over spline | candidate over spline |",
             "|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        case, psf = key.split(" | ")
        lines.append(f"| {case} | {psf} | {r['spline']:.2f} | {r['default']:.2f} | {r['candidate']:.2f} | "
                     f"{r['default'] - r['spline']:+.2f} | **{r['candidate'] - r['spline']:+.2f}** |")
    return lines


def report(model: str, results: dict) -> None:
    def worst(volume, tag):
        return min(r[tag] - r["spline"] for k, r in results.items() if k.startswith(volume))

    worst_gain = {v: worst(v, "candidate") - worst(v, "default") for v in RULE_VOLUMES}
    own = results[f"{RULE_VOLUMES[1]} | {next(iter(PSFS))}"]
    own_change = own["candidate"] - own["default"]
    worth = all(g >= 1.0 for g in worst_gain.values()) and own_change >= -0.3
    lines = [f"## Sensitivity to the LR image's PSF, and PSF-robust training {Path(model).stem} (issue 21, round 15)", "",
             f"`bash benchmarks/experiments/15-psf/run.sh` (candidate `{Path(model).name}`: the shipped default "
             "fine-tuned with the stage-3 recipe plus `--augment ...,psf`, each LR patch simulated with a Gaussian or "
             "box PSF of random FWHM 0.5-1.25 LR voxels, at most 28 min). x2 from LR images made by `mrsr simulate "
             "--psf SHAPE --fwhm` with the PSF of each row (FWHM in LR voxels; simulate's default and the default's "
             "training PSF is the Gaussian of one voxel). PSNR (dB, head mask), crops as in round 10; Colin27 is "
             "reported only. " + stamp(), "", *psf_table(results)]
    lines += ["", "Question (fixed before the run; not a shipping rule): is the candidate worth a shipping round? "
              "Its worst gain over spline across the PSFs must beat the default's worst by >= 1 dB on both validation "
              "volumes (measured " + ", ".join(f"{g:+.2f}" for g in worst_gain.values()) + "), losing at most 0.3 dB "
              f"at simulate's PSF on the MNI152NLin6Asym right half (measured {own_change:+.2f}): "
              f"**{'yes' if worth else 'no'}**."]
    write_section(f"psf-{Path(model).stem}", "\n".join(lines))


if __name__ == "__main__":
    model, results = candidate_results("15-psf", measure)
    report(model, results)
