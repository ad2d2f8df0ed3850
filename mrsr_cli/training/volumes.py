"""The images a run trains and validates on, normalised, with the voxels patches may be centred on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrsr_cli.errors import MrsrError


@dataclass
class TrainingVolume:
    data: np.ndarray  # normalised HR image
    voxel_size: tuple
    centres: np.ndarray  # (N, 3) voxel indices inside the head
    reference: np.ndarray | None = None
    tissue: np.ndarray | None = None  # (K, ...) probability maps (synthetic references, low-field contrast)
    source: str = ""
    sha256: str = ""
    ilr: np.ndarray | None = None  # a real pair's LR image on this grid (mrsr_cli.training.pairs): no simulation
    pair_factor: np.ndarray | None = None  # that pair's LR voxel / HR voxel per axis


def pair_training_volume(pair) -> TrainingVolume:
    """A :class:`TrainingVolume` from a :class:`mrsr_cli.training.pairs.PreparedPair`: patches centred in
    the head where both images overlap."""
    from mrsr_cli.evaluation.metrics import head_mask
    from mrsr_cli.models.store import sha256_file

    centres = np.argwhere(head_mask(pair.hr) & pair.overlap)
    if centres.size == 0:
        raise MrsrError(f"pair {pair.lr_path}:{pair.hr_path}: no head voxels a patch away from the LR image's border")
    return TrainingVolume(pair.hr, pair.grid.voxel_size, centres, source=pair.hr_path, sha256=sha256_file(pair.hr_path),
                          ilr=pair.ilr, pair_factor=pair.factor)


def load_training_volume(path, reference=None, tissue_maps=None) -> TrainingVolume:
    from mrsr_cli.models.channels import normalization_scale
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.evaluation.metrics import head_mask
    from mrsr_cli.models.store import sha256_file

    vol = load_volume(path, what="training image")
    data = vol.data / normalization_scale(vol.data)
    centres = np.argwhere(head_mask(data))
    ref = None
    if reference is not None:
        rvol = load_volume(reference, what="training reference")
        if rvol.grid.shape != vol.grid.shape:
            raise MrsrError(f"reference {reference} is not on the grid of {path}; register it first (mrsr register)")
        ref = rvol.data / normalization_scale(rvol.data)
    tissue = None
    if tissue_maps:
        maps = [load_volume(p, what="tissue map").data for p in tissue_maps]
        if any(m.shape != data.shape for m in maps):
            raise MrsrError("tissue maps must be on the grid of the training image they belong to")
        tissue = np.stack([m / max(float(m.max()), 1e-6) for m in maps])
    return TrainingVolume(data, vol.grid.voxel_size, centres, ref, tissue, str(path), sha256_file(path))


def load_validation_volume(path, guided: bool, seed: int) -> tuple:
    """``(normalised data, grid, synthetic reference or None)`` of a validation image; a guided
    model is validated with a synthetic reference of it (seeded)."""
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.models.channels import normalization_scale
    from mrsr_cli.training.augment import synthetic_reference

    v = load_volume(path, what="validation image")
    data = v.data / normalization_scale(v.data)
    ref = synthetic_reference(data, None, np.random.default_rng([seed, 999])) if guided else None
    return data, v.grid, ref
