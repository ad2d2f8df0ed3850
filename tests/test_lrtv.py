"""LRTV (upscale --method lrtv): its pieces against references, and the method end to end."""

import json

import numpy as np
import pytest

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.data.geometry import Grid
from mrsr_cli.data.io import Volume
from mrsr_cli.methods.lrtv import fold, lrtv, singular_value_threshold, tv_gradient, unfold
from mrsr_cli.evaluation.metrics import head_mask, psnr
from mrsr_cli.degrade.simulate import simulate_lowres


def test_tv_gradient_matches_finite_differences():
    x = np.random.default_rng(0).random((7, 6, 5)).astype(np.float64)
    grad, total = tv_gradient(x, eps=0.05)
    h = 1e-6
    for idx in [(0, 0, 0), (3, 2, 1), (6, 5, 4), (2, 5, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric = (tv_gradient(xp, eps=0.05)[1] - tv_gradient(xm, eps=0.05)[1]) / (2 * h)
        assert grad[idx] == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    assert total > 0


def test_singular_value_threshold_is_svt_of_the_unfolding():
    x = np.random.default_rng(1).random((6, 7, 8)).astype(np.float32)
    for mode in range(3):
        assert np.array_equal(fold(unfold(x, mode), mode, x.shape), x)
        u, s, vt = np.linalg.svd(unfold(x, mode).astype(np.float64), full_matrices=False)
        tau = float(np.median(s))
        expected = fold((u * np.clip(s - tau, 0, None)) @ vt, mode, x.shape)
        got, nuclear = singular_value_threshold(x, mode, tau)
        np.testing.assert_allclose(got, expected, atol=2e-4)
        assert nuclear == pytest.approx(np.clip(s - tau, 0, None).sum(), rel=1e-5)


def test_lrtv_beats_spline_and_lowers_its_objective():
    from mrsr_cli.data.interpolate import resample

    hr = phantom((40, 44, 36), seed=5)
    grid = Grid(hr.shape, make_affine((1.0, 1.0, 1.0), oblique=True))
    lr, lr_grid, _ = simulate_lowres(hr, grid, factor=(2, 2, 2))
    out, info = lrtv(Volume(lr, lr_grid.affine), grid, progress=False)
    mask = head_mask(hr)
    spline = resample(lr, lr_grid, grid, order=3)
    assert psnr(hr, out, mask) > psnr(hr, spline, mask) + 0.5
    objective = info["LRTVObjective"]
    assert objective[-1] < objective[0] and len(objective) == info["LRTVIterations"] <= 20


def test_upscale_method_lrtv_end_to_end(tmp_path):
    src = save_nifti(tmp_path / "lr.nii.gz", phantom((14, 16, 12)), make_affine((2, 2, 2), oblique=True, radiological=True))
    out = tmp_path / "sr.nii.gz"
    run_cli("upscale", src, out, "--factor", "2", "--method", "lrtv", "--lrtv-iterations", "3", "--lrtv-lambda-tv", "0.002", check=0)
    sidecar = json.loads((tmp_path / "sr.json").read_text())
    assert sidecar["Method"] == "lrtv" and sidecar["LRTVIterations"] <= 3 and sidecar["LRTVLambdaTV"] == 0.002
    assert len(sidecar["LRTVObjective"]) == sidecar["LRTVIterations"]
    import nibabel as nib
    spline = tmp_path / "spline.nii.gz"
    run_cli("upscale", src, spline, "--factor", "2", "--method", "spline", check=0)
    np.testing.assert_allclose(nib.load(out).affine, nib.load(spline).affine)  # same grid, world coordinates


@pytest.mark.parametrize("args, message, code", [
    (["--lrtv-iterations", "0"], "--lrtv-iterations", 2),
    (["--lrtv-lambda-tv", "-1"], "--lrtv-lambda-tv", 2),
    (["--lrtv-lambda-rank", "1e9"], "--lrtv-lambda-rank", 2),
    (["--memory-limit", "16M", "--voxel-size", "0.25"], "memory limit", 1),
])
def test_lrtv_bad_input(tmp_path, args, message, code):
    src = save_nifti(tmp_path / "lr.nii.gz", phantom((14, 16, 12)), make_affine((2, 2, 2)))
    grid = [] if "--voxel-size" in args else ["--factor", "2"]
    proc = run_cli("upscale", src, tmp_path / "o.nii.gz", "--method", "lrtv", *grid, *args)
    assert proc.returncode == code and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.nii.gz").exists()
    proc = run_cli("upscale", src, tmp_path / "o.nii.gz", "--factor", "2", "--lrtv-iterations", "3")
    assert proc.returncode == 2 and "--lrtv-iterations does not apply to --method cnn" in proc.stderr
