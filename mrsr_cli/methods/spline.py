"""Cubic (or any order 1-5) B-spline interpolation: the baseline every other method is scored against."""

from __future__ import annotations

from mrsr_cli.errors import UsageError


def spline(volume, target, *, order: int = 3):
    """B-spline interpolation of order ``order`` (1-5) onto ``target`` (:mod:`mrsr_cli.data.interpolate`)."""
    from mrsr_cli.data.interpolate import resample

    if not 1 <= order <= 5:
        raise UsageError(f"--order must be 1..5, got {order}")
    return resample(volume.data, volume.grid, target, order=order), {"SplineOrder": order}
