#!/usr/bin/env python3
"""Round 33 §10: in-plane self-training for thick slices whose targets are the network's own output.

As smore.py (§9), but the image whose in-plane axes are degraded is the network's output on the
input (told its slice profile), not the input splined onto the output grid. In §9 the network's
other in-plane axis during adaptation was the input's blurred slice axis, which inference never
shows it; here it is the network's estimate of that axis, much closer to what inference shows.

Usage: python benchmarks/experiments/33-blind/smore_distill.py [VOLUME [STEPS]]   (default: the validation half, 300)
"""

import dataclasses
import functools
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import smore  # noqa: E402
from adapt_slices import compare  # noqa: E402
from mrsr_cli.infer.engine import super_resolve  # noqa: E402
from select_code import VALIDATION  # noqa: E402


def network_estimate(net, volume, target, engine, input_fwhm, input_psf):
    """The network's output on the output grid, told the input's PSF (before any adaptation)."""
    quiet = dataclasses.replace(engine, progress=False)
    return super_resolve(volume, target, net, options=quiet, input_fwhm=input_fwhm, input_psf=input_psf)[0]


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    smore.cnn.adapt_to_input = functools.partial(smore.in_plane_adapt, estimate=network_estimate)
    compare(volume, steps, "told + distilled in-plane adapt", f"smore_distill_{Path(volume).name.split('.')[0]}_{steps}.json")


if __name__ == "__main__":
    main()
