"""Observation model, resampler and metrics against independent references."""

import json

import numpy as np
import pytest
from scipy import ndimage

from conftest import make_affine, phantom, run_cli
from mrsr_cli.data.geometry import Grid, upscaled_grid
from mrsr_cli.data.interpolate import GeneralResampler, SeparableResampler, make_resampler
from mrsr_cli.evaluation.metrics import data_range, head_mask, psnr, ssim, ssim_map
from mrsr_cli.degrade.observation import apply_psf
from mrsr_cli.degrade.psf import box_kernel
from mrsr_cli.degrade.simulate import simulate_lowres


def _fwhm_of(profile):
    peak = profile.max()
    above = np.flatnonzero(profile >= peak / 2)
    lo, hi = above[0], above[-1]
    left = lo - 1 + (peak / 2 - profile[lo - 1]) / (profile[lo] - profile[lo - 1])
    right = hi + (profile[hi] - peak / 2) / (profile[hi] - profile[hi + 1])
    return right - left


def test_gaussian_psf_fwhm_matches_request():
    impulse = np.zeros((41, 41, 41), np.float32)
    impulse[20, 20, 20] = 1
    blurred = apply_psf(impulse, (1.0, 0.5, 1.0), (3.0, 3.0, 6.0))
    assert _fwhm_of(blurred[:, 20, 20]) == pytest.approx(3.0, abs=0.08)
    assert _fwhm_of(blurred[20, :, 20]) == pytest.approx(6.0, abs=0.08)  # 3 mm at 0.5 mm voxels
    assert _fwhm_of(blurred[20, 20, :]) == pytest.approx(6.0, abs=0.08)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-4)


def test_box_kernel_integrates_voxels():
    np.testing.assert_allclose(box_kernel(2.0), [0.25, 0.5, 0.25])
    assert box_kernel(3.0).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(box_kernel(3.0), [1 / 3] * 3)
    np.testing.assert_allclose(box_kernel(2.5), [0.3, 0.4, 0.3])  # 0.75 of each neighbour, over 2.5


def test_noise_level_rician():
    hr = np.full((40, 40, 40), 100.0, np.float32)
    lr, _, info = simulate_lowres(hr, Grid(hr.shape, np.eye(4)), factor=(2, 2, 2), noise=0.05, seed=1)
    assert info["noise_sigma"] == pytest.approx(5.0)
    assert lr.std() == pytest.approx(5.0, rel=0.1)  # high SNR: Rician ≈ Gaussian
    lr2, _, _ = simulate_lowres(hr, Grid(hr.shape, np.eye(4)), factor=(2, 2, 2), noise=0.05, seed=1)
    np.testing.assert_array_equal(lr, lr2)


def test_separable_matches_map_coordinates_and_general_path():
    rng = np.random.default_rng(0)
    vol = ndimage.gaussian_filter(rng.normal(size=(12, 14, 10)), 1).astype(np.float32)
    src = Grid(vol.shape, make_affine((2, 2, 3)))
    dst = upscaled_grid(src, (2, 2, 3))
    sep = make_resampler(vol, src, dst)
    assert isinstance(sep, SeparableResampler)
    out = sep.full()
    coords = [(np.arange(n) - o) for n, o in zip(dst.shape, [0, 0, 0])]
    mapping = np.linalg.solve(src.affine, dst.affine)
    general = GeneralResampler(vol, mapping, dst.shape).full()
    np.testing.assert_allclose(out, general, atol=2e-5)
    ii = np.stack(np.meshgrid(*coords, indexing="ij")).reshape(3, -1).astype(float)
    pts = mapping[:3, :3] @ ii + mapping[:3, 3:4]
    ref = ndimage.map_coordinates(vol.astype(np.float64), pts, order=3, mode="reflect").reshape(dst.shape)
    np.testing.assert_allclose(out, ref, atol=2e-5)
    # any box, including one that reaches beyond the grid (zeros there)
    box = (slice(-3, 9), slice(20, 31), slice(5, 40))
    block = sep.read(box)
    np.testing.assert_allclose(block[3:, :8, :25], out[0:9, 20:28, 5:30], atol=1e-6)
    assert not block[:3].any() and not block[:, 8:].any() and not block[:, :, 25:].any()


def test_simulate_cli_writes_lr_grid(tmp_path, head):
    run_cli("simulate", head, tmp_path / "lr.nii.gz", "--voxel-size", "2,2,3", "--psf", "box", check=0)
    meta = json.loads((tmp_path / "lr.json").read_text())
    assert meta["output_voxel_size_mm"] == [2.0, 2.0, 3.0] and meta["psf"] == "box"


def test_ssim_matches_scikit_image():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    ref = phantom((32, 30, 28))
    test = ref + rng.normal(0, 5, ref.shape).astype(np.float32)
    drange = data_range(ref)
    expected = skimage_metrics.structural_similarity(ref, test, gaussian_weights=True, sigma=1.5,
                                                     use_sample_covariance=False, data_range=drange)
    smap = ssim_map(ref, test, drange)
    pad = 5  # scikit-image crops (win_size - 1) // 2 = 5 voxels before averaging
    assert smap[pad:-pad, pad:-pad, pad:-pad].mean() == pytest.approx(expected, abs=1e-6)
    assert ssim(ref, ref) == pytest.approx(1.0)


def test_psnr_definition_and_mask():
    ref = phantom()
    mask = head_mask(ref)
    assert mask.sum() > 0.25 * mask.size and not mask[0, 0, 0]
    noisy = ref + 2.0
    drange = np.percentile(ref[mask], 99.5)
    assert psnr(ref, noisy, mask) == pytest.approx(10 * np.log10(drange**2 / 4.0))


def test_evaluate_cli_json_and_csv(tmp_path, head):
    run_cli("simulate", head, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / "sp.nii.gz", "--factor", "2", "--method", "spline", check=0)
    run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / "lin.nii.gz", "--factor", "2", "--method", "spline", "--order", "1", check=0)
    proc = run_cli("evaluate", head, tmp_path / "sp.nii.gz", tmp_path / "lin.nii.gz", "--json", "--csv", tmp_path / "s.csv", check=0)
    rows = json.loads(proc.stdout)
    assert [r["image"].endswith(n) for r, n in zip(rows, ["sp.nii.gz", "lin.nii.gz"])] == [True, True]
    assert rows[0]["psnr"] > rows[1]["psnr"] > 15 and 0 < rows[1]["ssim"] < rows[0]["ssim"] < 1
    assert (tmp_path / "s.csv").read_text().startswith("image,psnr,ssim")
    proc = run_cli("evaluate", head, tmp_path / "lr.nii.gz")
    assert proc.returncode == 1 and "not on the reference grid" in proc.stderr and "shape" in proc.stderr
