#!/usr/bin/env python3
"""Round 11's scores on the right T2 half: spline, unguided U, guided G with the right T1 half and
with wrong references.  Writes results/scores.json and the 'guided-t2' section of
benchmarks/experiments/LOG.md.  Round 12 calls :func:`score` with its own models, factors and section."""

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import DATA, MRSR, stamp, timed, write_section  # noqa: E402

HALVES = DATA / "guided-t2"
INTRO = ("`bash benchmarks/experiments/11-guided-t2/run.sh`: SPM's co-registered avg152T2/avg152T1 (2 mm, "
         "spm-runtime), split into hemispheres; G = the builtin `guided` fine-tuned on the left T2 half with the "
         "left T1 half as reference, U = `default` fine-tuned on the same T2 half unguided, same budget (600 steps). "
         "Scored on the right T2 half (PSNR dB / SSIM, head mask). The template is nearly symmetric (left-right "
         "mirror correlation 0.95), so the right half is a weak hold-out. ")


def score(models: Path, factors: tuple, results_dir: Path, section: str, title: str, intro: str) -> None:
    """Scores ``models``/G.safetensors and U.safetensors on the right T2 half at ``factors``."""
    hr, t1 = HALVES / "spm_t2_right.nii.gz", HALVES / "spm_t1_right.nii.gz"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        img = nib.load(t1)
        data = np.asarray(img.dataobj, dtype=np.float32)
        wrong = {"mirrored T1": data[::-1].copy(), "noise": np.random.default_rng(0).uniform(0, data.max(), data.shape).astype(np.float32)}
        refs = {"T1": t1}
        for name, arr in wrong.items():
            refs[name] = tmp / f"{name.replace(' ', '_')}.nii.gz"
            nib.save(nib.Nifti1Image(arr, img.affine), str(refs[name]))
        for factor in factors:
            lr = tmp / "lr.nii.gz"
            timed(MRSR + ["simulate", hr, lr, "--factor", factor, "--force"])
            outs = {"spline": ["--method", "spline"], "U": ["--model", models / "U.safetensors"]}
            outs.update({f"G, {k} reference": ["--model", models / "G.safetensors", "--reference", v] for k, v in refs.items()})
            paths = {}
            for tag, opts in outs.items():
                paths[tag] = tmp / f"{len(paths)}.nii.gz"
                timed(MRSR + ["upscale", lr, paths[tag], "--like", hr, "--force", *opts])
            rows = json.loads(timed(MRSR + ["evaluate", hr, *paths.values(), "--json"])[2])
            results[factor] = {t: {"psnr": r["psnr"], "ssim": r["ssim"]} for t, r in zip(paths, rows)}
            print(factor, {t: round(r["psnr"], 2) for t, r in zip(paths, rows)}, flush=True)
    results_dir.mkdir(exist_ok=True)
    (results_dir / "scores.json").write_text(json.dumps(results, indent=1))
    names = list(results[factors[0]])
    lines = [title, "", intro + stamp(), "",
             "| factor | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for factor, row in results.items():
        lines.append(f"| {factor} | " + " | ".join(f"{row[n]['psnr']:.2f} / {row[n]['ssim']:.4f}" for n in names) + " |")
    write_section(section, "\n".join(lines))


if __name__ == "__main__":
    score(HALVES, ("2,2,2", "2,2,3"), Path(__file__).parent / "results", "guided-t2",
          "## Guided T2 with a real T1 reference (issue 21, round 11; first attempt)", INTRO)
