#!/usr/bin/env python3
"""Round 33 §12: `--adapt` on thick slices in two rounds, the second cut from the adapted network's output.

`upscale --adapt 300 --seed 0` learns in-plane pairs cut from the network's output before
adapting (§10).  Here the same 300 steps are split: 150 steps as §10, then the adapted network
upscales the input again and 150 more steps (seed 1, a fresh Adam) learn from that sharper estimate of
the slice axis.  Compared with the same told command without adapting, on the (1,1,4) cells of adapt_slices.py.

Usage: python benchmarks/experiments/33-blind/smore_iterate.py [VOLUME]   (default: the validation half)
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402,F401
import mrsr_cli.methods.cnn  # noqa: E402,F401
from adapt_slices import compare  # noqa: E402
from select_code import VALIDATION  # noqa: E402

cnn = sys.modules["mrsr_cli.methods.cnn"]  # the module: the package attribute of that name is the function
one_round = cnn.adapt_to_input


def two_rounds(net, volume, target, steps, seed, engine, input_fwhm=None, input_psf="gaussian"):
    half = steps // 2
    net, _ = one_round(net, volume, target, half, seed, engine, input_fwhm, input_psf)
    for parameter in net.net.parameters():  # an adapted copy comes back frozen; the second round trains it again
        parameter.requires_grad_(True)
    return one_round(net, volume, target, steps - half, seed + 1, engine, input_fwhm, input_psf)


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    cnn.adapt_to_input = two_rounds
    compare(volume, 300, "told + adapt in two rounds", f"smore_iterate_{Path(volume).name.split('.')[0]}.json")


if __name__ == "__main__":
    main()
