"""Cubic (or any order 1-5) B-spline interpolation: the baseline every other method is scored against.

Onto a grid coarser than the input along some axis, the input is first blurred there by a
Gaussian of FWHM one output voxel (:func:`mrsr_cli.degrade.observation.apply_psf`, as ``mrsr
simulate`` does), so that resampling does not alias.
"""

from __future__ import annotations

import numpy as np

from mrsr_cli.errors import UsageError


def spline(volume, target, *, order: int = 3):
    """B-spline interpolation of order ``order`` (1-5) onto ``target`` (:mod:`mrsr_cli.data.interpolate`),
    anti-aliased where ``target`` is coarser than the input."""
    from mrsr_cli.data.geometry import voxel_mapping
    from mrsr_cli.data.interpolate import resample
    from mrsr_cli.degrade.observation import apply_psf

    if not 1 <= order <= 5:
        raise UsageError(f"--order must be 1..5, got {order}")
    data = volume.data
    reach = np.abs(voxel_mapping(volume.grid, target)[:3, :3]).max(axis=1)  # input voxels an output voxel spans, per input axis
    if (reach > 1 + 1e-6).any():
        data = apply_psf(data, volume.grid.voxel_size, reach * np.asarray(volume.grid.voxel_size))
    info = {"SplineOrder": order}
    if data is not volume.data:
        info["AntiAliased"] = True
    return resample(data, volume.grid, target, order=order), info
