#!/usr/bin/env python3
"""Round 22's scores: round 16's measure and table (spline, the default command, and a model told
each of round 15's five PSFs) for the builtin ``psf-aware``, both with data consistency, the
default since round 20.  Writes results/psf-aware.json and the 'psf-aware-consistency' section of
benchmarks/experiments/LOG.md.  Usage: score.py psf-aware [--report-only]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _common import candidate_results, experiment_round, stamp, write_section  # noqa: E402

round15, round16 = experiment_round("15-psf"), experiment_round("16-psf-input")

if __name__ == "__main__":
    model, results = candidate_results("22-psf-aware-consistency", round16.measure)
    lines = ["## psf-aware told the PSF, with data consistency (issue 21, round 22)", "",
             "`bash benchmarks/experiments/22-psf-aware-consistency/run.sh`: round 16's table (x2 from LR images made by "
             "`mrsr simulate --psf SHAPE --fwhm`; crops as in round 10) for the builtin `psf-aware` told each PSF "
             "(`--input-psf/--input-fwhm`), against the default command, which assumes simulate's PSF. Both run data "
             "consistency after the network (`--consistency auto`, the default since round 20), each with the PSF it "
             "assumes. A measurement, no rule. " + stamp(), "", *round15.psf_table(results)]
    write_section("psf-aware-consistency", "\n".join(lines))
