"""What a trained model's file says about how it was made (the safetensors JSON metadata)."""

from __future__ import annotations

import time
from pathlib import Path

from mrsr_cli import __version__
from mrsr_cli.data.bids import bids_contrast
from mrsr_cli.training.config import (KSPACE_WINDOWS, PSF_FWHM_RANGE, PSF_INPUT_FWHM_RANGE, PSF_SIMULATE_FRACTION,
                                      TrainConfig)


def contrasts(cfg: TrainConfig, image_paths) -> list[str]:
    """The training images' contrast: ``cfg.contrast`` when given, else the BIDS suffixes of their
    names, else ``["unknown"]``.

    >>> contrasts(TrainConfig(inputs=[], output="m.safetensors"), ["sub-01_T2w.nii.gz", "sub-02_desc-x_T2w.nii"])
    ['T2w']
    >>> contrasts(TrainConfig(inputs=[], output="m.safetensors"), ["avg152T1.nii"])
    ['unknown']
    """
    if cfg.contrast:
        return [cfg.contrast]
    return sorted({bids_contrast(path) or "unknown" for path in image_paths}) or ["unknown"]



def psf_record(cfg: TrainConfig) -> str:
    """How the training inputs were made, in words (the model metadata's ``psf``)."""
    if cfg.pairs:
        return "none: real LR/HR pairs"
    from mrsr_cli.methods.consistency import SIMULATE_PSF_RECORD

    text = SIMULATE_PSF_RECORD
    if "psf" in cfg.augment:
        low, high = PSF_INPUT_FWHM_RANGE if cfg.psf_input else PSF_FWHM_RANGE
        text = f"gaussian or box, FWHM {low:g}-{high:g} LR voxels"
        if cfg.psf_input:
            text += f" (simulate's Gaussian of one voxel in one patch of {round(1 / PSF_SIMULATE_FRACTION)}), given as input"
    if cfg.kspace_fraction:
        text += (f"; k-space truncation in {cfg.kspace_fraction:g} of patches (window {', '.join(KSPACE_WINDOWS)}; "
                 f"its width told as the Gaussian of equal transfer at half the LR Nyquist frequency)")
    if cfg.slice_thickness is not None:
        text += f"; on a thick axis FWHM = slice thickness {cfg.slice_thickness:g} mm, {cfg.slice_profile} profile"
    if cfg.degradation == "low-field":
        text += f"; low field {cfg.field_strength:g} T from {cfg.source_field:g} T"
    return text


def model_metadata(cfg: TrainConfig, *, arch: str, precision: str, device, state: dict, stop_reason: str, volumes: list,
                   pairs: list, loss_state: dict, world_size: int) -> dict:
    """The model file's metadata: what it is, what it reads, and the recipe and data that made it."""
    import torch

    from mrsr_cli.models.channels import NORMALIZATION_PERCENTILE

    return {
        "name": cfg.name or Path(cfg.output).name.removesuffix(".safetensors"),
        "version": __version__,
        "architecture": arch,
        "contrasts": contrasts(cfg, [v.source for v in volumes]),
        "references": ["any (guided; synthetic references in training)" if cfg.synthetic_reference else "registered HR reference"] if cfg.guided else [],
        "normalization": {"method": "percentile", "percentile": NORMALIZATION_PERCENTILE, "of": "non-zero voxels of the input volume"},
        "training": {
            # the recipe, less the paths of its images (data and validation below keep their names)
            **{k: v for k, v in cfg.recipe().items() if k not in ("inputs", "references", "tissue_maps", "val", "pairs",
                                                                   "val_pairs")},
            "psf": psf_record(cfg),
            "optimizer": "Adam(beta1=0.9, beta2=0.999)",
            "precision": precision,
            "device": str(device),
            "iterations": state["iteration"],
            "stopped": stop_reason,
            "seconds": round(state["elapsed"], 1),
            "best_val_psnr": state["best_psnr"],
            "best_epoch": state["best_epoch"],
            "data": [{"file": Path(v.source).name, "sha256": v.sha256} for v in volumes],
            "validation": [Path(p).name for p in cfg.val or []],
            **({"trained_on": "pairs", "pairs": [{"lr": Path(p.lr_path).name, "hr": Path(p.hr_path).name,
                                                  "factor": [round(float(f), 4) for f in p.factor], **p.fit} for p in pairs],
                "validation_pairs": [[Path(lr).name, Path(hr).name] for lr, hr in cfg.val_pairs or []]}
               if cfg.pairs else {"trained_on": "simulated"}),
            "init_from": cfg.init_from,
            "world_size": world_size,
        },
        "software": {"mrsr": __version__, "torch": torch.__version__},
        **({"loss_state": {name: module.metadata() for name, module in loss_state.items()}} if loss_state else {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
