"""Geometry in world coordinates: FOV preservation, oblique/radiological affines, non-divisible sizes."""

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, run_cli, save_nifti
from mrsr_cli.data.geometry import Grid, parse_factor, resized_grid, scale_factor, scaled_grid, upscaled_grid
from mrsr_cli.errors import UsageError


def world(affine, ijk):
    ijk = np.atleast_2d(ijk).astype(float)
    return (affine[:3, :3] @ ijk.T).T + affine[:3, 3]


@pytest.mark.parametrize("oblique,radiological", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("factor", [(2, 2, 2), (2, 2, 3), (1, 1, 4)])
def test_lr_voxel_centre_is_mean_of_its_hr_block(oblique, radiological, factor):
    hr = Grid((24, 24, 24), make_affine((0.9, 1.1, 1.0), oblique, radiological))
    lr = scaled_grid(hr, factor)
    assert lr.shape == tuple(24 // f for f in factor)
    for ijk in [(0, 0, 0), (3, 2, 1), tuple(n - 1 for n in lr.shape)]:
        block = np.stack(np.meshgrid(*[np.arange(i * f, (i + 1) * f) for i, f in zip(ijk, factor)], indexing="ij"), -1).reshape(-1, 3)
        np.testing.assert_allclose(world(lr.affine, ijk)[0], world(hr.affine, block).mean(0), atol=1e-9)
    # the FOV corners coincide in world space
    for corner in [(-0.5, -0.5, -0.5), tuple(n - 0.5 for n in lr.shape)]:
        hr_corner = np.array(corner) * factor + (np.array(factor) - 1) / 2
        np.testing.assert_allclose(world(lr.affine, corner), world(hr.affine, hr_corner), atol=1e-9)


@pytest.mark.parametrize("factor", [(2, 2, 2), (2, 2.5, 2), (3, 3, 3)])
def test_simulate_then_upscale_lands_on_original_grid(factor):
    shape = (30, 30, 30)
    hr = Grid(shape, make_affine((1, 1, 1), oblique=True, radiological=True))
    back = upscaled_grid(scaled_grid(hr, factor), factor)
    assert back.shape == shape
    np.testing.assert_allclose(back.affine, hr.affine, atol=1e-9)


def test_non_divisible_keeps_voxel_size_and_centres_fov():
    hr = Grid((181, 217, 181), make_affine((1, 1, 1), oblique=True))
    lr = scaled_grid(hr, (2, 2, 3))
    assert lr.shape == (90, 108, 60)  # round(181/2)=90 (half to even), 108, round(60.33)
    np.testing.assert_allclose(lr.voxel_size, (2, 2, 3), atol=1e-12)
    centre_hr = world(hr.affine, [(n - 1) / 2 for n in hr.shape])
    centre_lr = world(lr.affine, [(n - 1) / 2 for n in lr.shape])
    np.testing.assert_allclose(centre_lr, centre_hr, atol=1e-9)


def test_resized_grid_arbitrary_voxel_size_world_centre():
    g = Grid((50, 40, 30), make_affine((0.8, 0.8, 2.5), radiological=True))
    r = resized_grid(g, (0.5, 0.5, 0.5))
    assert r.shape == (80, 64, 150)
    np.testing.assert_allclose(world(r.affine, [(n - 1) / 2 for n in r.shape]), world(g.affine, [(n - 1) / 2 for n in g.shape]), atol=1e-9)


@pytest.mark.parametrize("text", ["0", "-2", "17", "2,2", "2,2,2,2", "a", "nan"])
def test_bad_factors_rejected(text):
    with pytest.raises(UsageError):
        parse_factor(text)


def test_cli_simulate_upscale_world_content(tmp_path):
    """A linear ramp in *world* coordinates survives simulate + upscale at the right places."""
    affine = make_affine((1.0, 1.0, 1.0), oblique=True, radiological=True)
    shape = (32, 32, 32)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    w = world(affine, ijk)
    ramp = (50 + 0.7 * w[:, 0] - 0.3 * w[:, 1] + 0.5 * w[:, 2]).reshape(shape)
    src = save_nifti(tmp_path / "ramp.nii.gz", ramp, affine)
    run_cli("simulate", src, tmp_path / "lr.nii.gz", "--factor", "2,2,4", check=0)
    lr = nib.load(tmp_path / "lr.nii.gz")
    assert lr.shape == (16, 16, 8)
    lr_ijk = np.stack(np.meshgrid(*[np.arange(2, n - 2) for n in lr.shape], indexing="ij"), -1).reshape(-1, 3)
    lw = world(lr.affine, lr_ijk)
    expected = 50 + 0.7 * lw[:, 0] - 0.3 * lw[:, 1] + 0.5 * lw[:, 2]
    got = lr.get_fdata()[tuple(lr_ijk.T)]
    np.testing.assert_allclose(got, expected, atol=1e-3)  # a linear ramp is unchanged by a symmetric PSF
    run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz", "--factor", "2,2,4", "--method", "spline", check=0)
    sr = nib.load(tmp_path / "sr.nii.gz")
    assert sr.shape == shape
    np.testing.assert_allclose(sr.affine, affine, atol=1e-5)
    inner = (slice(6, -6),) * 3
    # boundary reflection leaves < 0.03 here; a half-voxel shift would cost >= 0.3 on this ramp
    np.testing.assert_allclose(sr.get_fdata()[inner], ramp[inner], atol=0.05)


def test_cli_like_resamples_onto_reference_grid_any_orientation(tmp_path):
    lr_aff = make_affine((2.0, 2.0, 2.0), origin=(-20, -22, -18))
    shape = (20, 22, 18)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    ramp = (10 + world(lr_aff, ijk) @ np.array([0.5, 0.2, -0.4])).reshape(shape)
    src = save_nifti(tmp_path / "lr.nii.gz", ramp, lr_aff)
    ref_aff = make_affine((1.0, 1.0, 1.0), oblique=True, radiological=True, origin=(6, -10, -6))
    ref = save_nifti(tmp_path / "ref.nii.gz", np.zeros((16, 18, 14)), ref_aff)
    run_cli("upscale", src, tmp_path / "out.nii.gz", "--like", ref, "--method", "spline", check=0)
    out = nib.load(tmp_path / "out.nii.gz")
    assert out.shape == (16, 18, 14)
    np.testing.assert_allclose(out.affine, ref_aff, atol=1e-5)
    oijk = np.stack(np.meshgrid(*[np.arange(n) for n in out.shape], indexing="ij"), -1).reshape(-1, 3)
    expected = 10 + world(ref_aff, oijk) @ np.array([0.5, 0.2, -0.4])
    lr_vox = np.linalg.solve(lr_aff, np.c_[world(ref_aff, oijk), np.ones(len(oijk))].T)[:3]
    assert lr_vox.min() > 2 and (lr_vox.max(axis=1) < np.array(shape) - 3).all()  # test design: well inside the FOV
    np.testing.assert_allclose(out.get_fdata().reshape(-1), expected, atol=5e-3)


@pytest.mark.parametrize("oblique,radiological", [(False, False), (True, True)])
def test_scale_factor_is_lr_voxel_over_target_voxel_along_target_axes(oblique, radiological):
    hr = Grid((40, 40, 40), make_affine((0.9, 1.1, 1.0), oblique, radiological))
    lr = resized_grid(hr, (0.9, 2.2, 4.0))  # mm
    np.testing.assert_allclose(scale_factor(lr, hr), [1, 2, 4], rtol=1e-6)
    np.testing.assert_allclose(scale_factor(hr, lr), [1, 1, 1])  # downsampling is not upscaling
    # the target's axes swapped (0 <-> 2): the factor follows the target's array axes
    swap = np.eye(4)[[2, 1, 0, 3]]
    swapped = Grid((40, 40, 40), hr.affine @ swap)
    np.testing.assert_allclose(scale_factor(lr, swapped), [4, 2, 1], rtol=1e-6)
