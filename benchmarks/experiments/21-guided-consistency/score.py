#!/usr/bin/env python3
"""Round 21's scores: round 11's scorer on round 14's G and U, with the default command (data
consistency on).  Writes results/scores.json and the 'guided-t2-consistency' section of
benchmarks/experiments/LOG.md, with the bar's verdict against round 14's scores."""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from _common import ROOT, experiment_round, write_section  # noqa: E402

round11 = experiment_round("11-guided-t2")
FACTORS = ("3,3,3", "4,4,4", "1,1,4")
BEFORE = ROOT / "benchmarks/experiments/14-guided-t2-edges/results/scores.json"

INTRO = ("`bash benchmarks/experiments/21-guided-consistency/run.sh`: round 14's models and setting, scored with the "
         "default command, which now runs data consistency after the network (`--consistency auto`, round 20) for U "
         "and G alike. PSNR dB / SSIM, head mask, right T2 half. ")


def verdict(after: dict, before: dict) -> list[str]:
    """The bar (NOTES.md) on ``after``, and each model's change against round 14's ``before``."""
    def gain(scores, factor, tag):
        return scores[factor][tag]["psnr"] - scores[factor]["U"]["psnr"]

    best = max(gain(after, f, "G, T1 reference") for f in FACTORS)
    worst_wrong = min(gain(after, f, t) for f in FACTORS for t in ("G, mirrored T1 reference", "G, noise reference"))
    met = best >= 1.0 and worst_wrong >= -0.5
    lines = ["", "| factor | G with T1 − U (round 14 → now) | mirrored T1 − U | noise − U | U: change from data consistency |",
             "|---|---|---|---|---|"]
    for f in FACTORS:
        cells = [f"{gain(before, f, t):+.2f} → **{gain(after, f, t):+.2f}**"
                 for t in ("G, T1 reference", "G, mirrored T1 reference", "G, noise reference")]
        lines.append(f"| ({f}) | " + " | ".join(cells) + f" | {after[f]['U']['psnr'] - before[f]['U']['psnr']:+.2f} |")
    lines += ["", f"Bar (NOTES.md, fixed before the run): best G-with-T1 gain over U {best:+.2f} dB (≥ +1.0), worst wrong "
              f"reference {worst_wrong:+.2f} dB (≥ −0.5): **{'met' if met else 'not met'}**."]
    return lines


if __name__ == "__main__":
    title = "## Guided T2 with data consistency (issue 21, round 21)"
    round11.score(round11.DATA / "guided-t2-edges", FACTORS, HERE / "results", "guided-t2-consistency", title, INTRO)
    after = json.loads((HERE / "results" / "scores.json").read_text())
    section = ROOT / "docs" / "benchmarks.md"
    text = section.read_text()
    start, end = text.index("<!-- BEGIN guided-t2-consistency -->"), text.index("<!-- END guided-t2-consistency -->")
    body = text[start:end].split("\n", 1)[1].rstrip("\n")
    write_section("guided-t2-consistency", body + "\n" + "\n".join(verdict(after, json.loads(BEFORE.read_text()))))
