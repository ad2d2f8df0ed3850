"""Score a model the way `mrsr train --val` does: PSNR gain over spline (head mask) per factor.

    python benchmarks/validate_model.py MODEL VAL.nii.gz [--val-factor "2,2,2;2,2,3;3,3,3;1,1,4"] [--reference flair|noise] [--ensemble 8]

Used to score a starting model (epoch 0) on the same validation volume as its fine-tunes
(docs/benchmarks.md, "How the default recipe was chosen").  Never point it at Colin27 to
choose anything: that volume is the held-out test.  Guided models get a synthetic reference
of the kind they trained on (`--reference synthetic`, as `mrsr train --val` does) or the
FLAIR-like remapping of the validation image defined in `_common.py` (`--reference flair`), a
contrast no model trains on and the held-out benchmark does not use.  `--reference noise`
(uniform noise, fixed seed) measures how much of a guided model's score does not come from its
reference at all.
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def score(model: str, val: str, factors: list, threads: int = 2, reference: str = "synthetic", ensemble: int = 1) -> dict:
    """Mean PSNR of ``model`` and of spline on ``val`` at each factor, and the per-factor gains (dB)."""
    import torch

    from mrsr_cli.models.channels import model_channels, normalization_scale

    from mrsr_cli.infer.device import resolve_precision
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.models.store import load_model
    from mrsr_cli.training.augment import synthetic_reference
    from mrsr_cli.training.validation import validate
    from mrsr_cli.models.zoo import resolve_model

    torch.set_num_threads(threads)
    net, meta = load_model(resolve_model(model)[0])
    volume = load_volume(val, what="validation image")
    data = volume.data / normalization_scale(volume.data)
    guided = model_channels(meta)[1] > 0
    if not guided:
        reference = None
    elif reference == "flair":
        from _common import flair_like

        remapped = flair_like(volume.data)
        reference = remapped / normalization_scale(remapped)  # as upscale normalises a reference
    elif reference == "noise":
        reference = np.random.default_rng([0, 998]).uniform(0, 1, data.shape).astype(np.float32)
    else:
        reference = synthetic_reference(data, None, np.random.default_rng([0, 999]))
    mean_net, mean_spline, gains = validate(net, [(data, volume.grid, reference)], [np.asarray(f, float) for f in factors],
                                            resolve_precision("auto", torch.device("cpu")), ensemble)
    return {"val_psnr": round(mean_net, 3), "val_psnr_spline": round(mean_spline, 3), "val_gain_per_factor": gains}


def main() -> None:
    from mrsr_cli.infer.tiling import ENSEMBLE_SIZES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("val")
    parser.add_argument("--val-factor", default="2,2,2;2,2,3;3,3,3;1,1,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", choices=["synthetic", "flair", "noise"], default="synthetic",
                        help="reference given to guided models (ignored for others)")
    parser.add_argument("--ensemble", type=int, default=1, choices=ENSEMBLE_SIZES, help="flip self-ensemble passes (upscale --ensemble)")
    args = parser.parse_args()
    factors = [[float(x) for x in f.split(",")] * (3 if f.count(",") == 0 else 1) for f in args.val_factor.split(";")]
    print(json.dumps({"model": args.model, "val": args.val, "val_factor": args.val_factor, "reference": args.reference,
                      "ensemble": args.ensemble, **score(args.model, args.val, factors, args.threads, args.reference, args.ensemble)}))


if __name__ == "__main__":
    main()
