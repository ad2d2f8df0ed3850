"""Rigid/affine registration with SimpleITK (Mattes mutual information, multi-resolution).

World conventions: nibabel affines map voxels to RAS+ mm; ITK images live in LPS mm.  The
conversion flips the sign of x and y (``LPS = diag(-1, -1, 1) · RAS``) on origin and direction;
spacing is the voxel size.  Numpy arrays are (i, j, k); SimpleITK arrays are (k, j, i).

The transform maps points of the FIXED space to the MOVING space (ITK convention), so the
moving image resampled through it lands on the fixed grid.  Saved transforms are ITK text
(``.tfm``) and can be reused with ``--apply`` (or by ANTs/ITK-SNAP/Slicer).

Example::

    moved, info = register_arrays(load_volume("t2.nii.gz"), load_volume("t1.nii.gz"))
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from mrsr_cli.console import NOTICE
from mrsr_cli.errors import MrsrError, UsageError

log = logging.getLogger("mrsr")
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def to_sitk(data: np.ndarray, affine: np.ndarray):
    """numpy (i, j, k) + RAS affine → SimpleITK image in LPS."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(data, dtype=np.float32).transpose(2, 1, 0)))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = RAS_TO_LPS @ affine[:3, :3] / spacing
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in direction.ravel()])
    image.SetOrigin([float(v) for v in RAS_TO_LPS @ affine[:3, 3]])
    return image


def grid_image(grid):
    """An empty SimpleITK image with ``grid``'s geometry (the resampling reference)."""
    return to_sitk(np.zeros(grid.shape, np.float32), grid.affine)


def from_sitk(image) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(np.float32)


# The three-level pyramid shrinks by 4: fewer voxels leave nothing to sample at the coarsest level.
MIN_REGISTRATION_VOXELS = 8


def register_images(moving, fixed, transform: str = "rigid", threads: int | None = None, seed: int = 1):
    """Optimise a rigid (Euler) or affine transform of ``moving`` onto ``fixed`` (Volumes)."""
    import SimpleITK as sitk

    if transform not in ("rigid", "affine"):
        raise UsageError(f"--transform must be rigid or affine, got {transform!r}")
    for what, volume in (("moving image", moving), ("fixed image", fixed)):
        if min(volume.data.shape) < MIN_REGISTRATION_VOXELS:
            raise MrsrError(f"the {what} is too small to register ({'×'.join(map(str, volume.data.shape))} voxels; at least "
                            f"{MIN_REGISTRATION_VOXELS} per axis)")
        if float(volume.data.max()) == float(volume.data.min()):
            raise MrsrError(f"the {what} is constant ({float(volume.data.min()):g}): there is nothing to register on")
    if threads:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    fixed_img, moving_img = to_sitk(fixed.data, fixed.affine), to_sitk(moving.data, moving.affine)

    def run(initial, shrink, smooth):
        method = sitk.ImageRegistrationMethod()
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(0.25, seed)
        method.SetInterpolator(sitk.sitkLinear)
        method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=300,
                                                        relaxationFactor=0.6, gradientMagnitudeTolerance=1e-8)
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetShrinkFactorsPerLevel(shrink)
        method.SetSmoothingSigmasPerLevel(smooth)
        method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        method.SetInitialTransform(initial, inPlace=False)
        result = method.Execute(fixed_img, moving_img)
        return result, method

    initial = sitk.CenteredTransformInitializer(fixed_img, moving_img, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.GEOMETRY)
    result, method = run(initial, [4, 2, 1], [2.0, 1.0, 0.0])
    rigid = _as_euler(result)
    final = rigid
    if transform == "affine":
        affine = sitk.AffineTransform(3)
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        affine.SetCenter(rigid.GetCenter())
        result, method = run(affine, [2, 1], [1.0, 0.0])
        final = _as_affine(result)
    info = {
        "Transform": transform,
        "MetricMattesMI": float(method.GetMetricValue()),
        "Iterations": int(method.GetOptimizerIteration()),
        "StopCondition": method.GetOptimizerStopConditionDescription(),
        **describe_transform(final),
    }
    return final, info


def _as_euler(tx):
    import SimpleITK as sitk

    if isinstance(tx, sitk.CompositeTransform) or tx.GetName() == "CompositeTransform":
        tx = sitk.CompositeTransform(tx).GetNthTransform(0)
    return sitk.Euler3DTransform(tx)


def _as_affine(tx):
    import SimpleITK as sitk

    if tx.GetName() == "CompositeTransform":
        tx = sitk.CompositeTransform(tx).GetNthTransform(0)
    return sitk.AffineTransform(tx)


def describe_transform(tx) -> dict:
    """Rotation angle (degrees) and translation (mm) of a rigid/affine transform."""
    matrix = np.asarray(tx.GetMatrix()).reshape(3, 3)
    u, _, vt = np.linalg.svd(matrix)
    rot = u @ vt
    angle = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(rot) - 1) / 2))))
    return {"RotationDegrees": round(angle, 4), "TranslationMm": [round(float(v), 4) for v in tx.GetTranslation()],
            "Matrix": [round(float(v), 6) for v in matrix.ravel()]}


def apply_transform(moving, target_grid, tx, order: int = 3) -> np.ndarray:
    """``moving`` (Volume) through ``tx`` onto ``target_grid``; 0 outside its FOV."""
    import SimpleITK as sitk

    interp = {0: sitk.sitkNearestNeighbor, 1: sitk.sitkLinear}.get(order, sitk.sitkBSpline)
    out = sitk.Resample(to_sitk(moving.data, moving.affine), grid_image(target_grid), tx, interp, 0.0, sitk.sitkFloat32)
    return from_sitk(out)


def normalized_mutual_information(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, bins: int = 32) -> float:
    """(H(A) + H(B)) / H(A, B): 1 for independent images, up to 2 for identical ones."""
    if mask is not None:
        a, b = a[mask], b[mask]
    hist, _, _ = np.histogram2d(a.ravel(), b.ravel(), bins=bins)
    p = hist / max(hist.sum(), 1)
    pa, pb = p.sum(1), p.sum(0)

    def entropy(q):
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    joint = entropy(p.ravel())
    return (entropy(pa) + entropy(pb)) / joint if joint > 0 else 1.0


def register_arrays(moving, fixed, target_grid=None, transform: str = "rigid", threads: int | None = None):
    """Register ``moving`` onto ``fixed`` and resample it on ``target_grid`` (default: fixed's)."""
    tx, info = register_images(moving, fixed, transform, threads)
    grid = target_grid or fixed.grid
    return apply_transform(moving, grid, tx), info


def register_files(moving, fixed, out_file, *, transform="rigid", like=None, save_transform=None, apply=None,
                   threads=None, force=False) -> dict:
    """Behind ``mrsr register``: register (or apply a saved transform), resample, write outputs."""
    import SimpleITK as sitk

    from mrsr_cli.data.bids import write_sidecar
    from mrsr_cli.data.io import check_outputs, load_grid, load_volume, output_set, require_suffix, save_volume, sidecar_path

    from mrsr_cli.budget import check_grid_fits
    from mrsr_cli.values import check_number

    if threads is not None:
        check_number(threads, "--threads", lo=1, integer=True)
    outputs = [require_suffix(out_file), sidecar_path(out_file),
               save_transform and require_suffix(save_transform, (".tfm", ".txt"))]
    check_outputs(outputs, [moving, fixed, like, apply], force)
    if apply is not None and not Path(apply).is_file():
        raise MrsrError(f"transform file not found: {apply}")
    grid = load_grid(like, what="--like grid") if like else None
    if grid is not None:  # from the header, before any voxel is read
        check_grid_fits("register", grid.shape, 2)
    mov, fix = load_volume(moving, what="moving image"), load_volume(fixed, what="fixed image")
    grid = grid or fix.grid
    if apply is not None:
        try:
            tx = sitk.ReadTransform(str(apply))
        except RuntimeError as exc:
            raise MrsrError(f"cannot read transform {apply}: {str(exc).splitlines()[0]}") from None
        info = {"Transform": "applied", "AppliedTransform": str(apply), **describe_transform(tx)}
    else:
        tx, info = register_images(mov, fix, transform, threads)
    moved = apply_transform(mov, grid, tx)
    if save_transform is not None:
        info["TransformFile"] = str(save_transform)
    with output_set(outputs) as staged:
        save_volume(staged[Path(out_file)], moved, grid.affine, fix.codes)
        if save_transform is not None:
            sitk.WriteTransform(tx, str(staged[Path(save_transform)]))
        write_sidecar(out_file, {"Operation": "register", **info}, sources=[moving, fixed], to=staged[sidecar_path(out_file)])
    log.log(NOTICE, "registered %s onto %s: %.3f deg, translation %s mm", moving, fixed, info["RotationDegrees"], info["TranslationMm"])
    return {"out_file": str(out_file), **info}
