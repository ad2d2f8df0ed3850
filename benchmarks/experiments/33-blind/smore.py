#!/usr/bin/env python3
"""Round 33 §9: in-plane self-training for thick slices (SMORE's idea with this 3-D network).

`upscale --adapt 300 --seed 0` with its adaptation replaced: training pairs come from the input's
sharp in-plane axes. Each patch of the input splined onto the output grid has one in-plane axis
(x or y) degraded by the told slice profile and the slice factor, and is turned so that this axis
lies along the network's slice axis. Compared with the same told command without adapting, on the
(1,1,4) cells of adapt_slices.py.

Since §10 `--adapt` does this on thick slices with the network's output as the image the pairs are
cut from (`mrsr_cli.methods.adapt.adapt_model`'s ``estimate``); this script runs the same code
with the splined input instead.

Usage: python benchmarks/experiments/33-blind/smore.py [VOLUME [STEPS]]    (default: the validation half, 300)
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

import mrsr_cli  # noqa: E402
import mrsr_cli.methods.cnn  # noqa: E402,F401
from adapt_slices import compare  # noqa: E402
from mrsr_cli.data.interpolate import resample  # noqa: E402
from mrsr_cli.infer.device import resolve_device, resolve_precision  # noqa: E402
from mrsr_cli.infer.engine import input_psf_encoding  # noqa: E402
from mrsr_cli.methods.adapt import adapt_model  # noqa: E402
from mrsr_cli.methods.safety import check_acquisition  # noqa: E402
from select_code import VALIDATION  # noqa: E402

cnn = sys.modules["mrsr_cli.methods.cnn"]  # the module: the package attribute of that name is the function


def spline_estimate(net, volume, target, engine, input_fwhm, input_psf):
    """The input on the output grid as inference feeds it to the network (§9)."""
    return resample(volume.data, volume.grid, target, order=3)


def in_plane_adapt(net, volume, target, steps, seed, engine, input_fwhm=None, input_psf="gaussian", estimate=spline_estimate):
    """``cnn.adapt_to_input`` with the thick-slice pairs cut from ``estimate(net, volume, target,
    engine, input_fwhm, input_psf)``, the image on the output grid in the input's units."""
    device = resolve_device(engine.device)
    return adapt_model(net, volume, cnn.input_axis_factor(volume, target), steps, seed=seed, device=device,
                       precision="bf16" if resolve_precision(engine.precision, device) == "bf16" else "fp32",
                       acquisition=check_acquisition(input_psf, input_fwhm, volume.grid.voxel_size),
                       psf_code=input_psf_encoding(volume.grid, target, input_fwhm, input_psf),
                       estimate=lambda: estimate(net, volume, target, engine, input_fwhm, input_psf))


STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def main() -> None:
    volume = sys.argv[1] if len(sys.argv) > 1 else str(VALIDATION)
    cnn.adapt_to_input = in_plane_adapt
    compare(volume, STEPS, "told + in-plane adapt", f"smore_{Path(volume).name.split('.')[0]}_{STEPS}.json")


if __name__ == "__main__":
    main()
