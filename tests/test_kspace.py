"""Cartesian k-space truncation (simulate --acquisition kspace): exact adjoint, exact on
band-limited images, world geometry the same as the PSF acquisition's, and its usage errors."""

import json

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom, save_nifti
from mrsr_cli.data.geometry import Grid, axis_aligned_mapping, scaled_grid, voxel_mapping
from mrsr_cli.degrade.kspace import WINDOWS, KSpaceModel


@pytest.mark.parametrize("window", sorted(WINDOWS))
@pytest.mark.parametrize("factor", [(2, 2, 2), (2, 2.5, 3)])
def test_the_adjoint_is_exact_on_an_oblique_grid(window, factor):
    hr = Grid((30, 26, 24), make_affine((1.0, 1.2, 0.9), oblique=True, radiological=True))
    lr = scaled_grid(hr, factor)
    model = KSpaceModel(hr, lr, window)
    rng = np.random.default_rng(1)
    x, y = rng.random(hr.shape, dtype=np.float32), rng.random(lr.shape, dtype=np.float32)
    lhs, rhs = float(np.vdot(model.forward(x), y)), float(np.vdot(x, model.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_a_band_limited_image_is_sampled_exactly_and_a_constant_stays_constant():
    hr = Grid((32, 32, 32), np.eye(4))
    lr = scaled_grid(hr, (2, 2, 2))
    model = KSpaceModel(hr, lr)
    j = np.arange(32)
    wave = (np.cos(2 * np.pi * 5 * j / 32)[:, None, None] * np.ones((1, 32, 32))).astype(np.float32)
    scale, offset = axis_aligned_mapping(voxel_mapping(hr, lr))
    centres = offset[0] + scale[0] * np.arange(16)  # the LR voxel centres in HR voxels: the same field of view
    np.testing.assert_allclose(model.forward(wave)[:, 3, 3], np.cos(2 * np.pi * 5 * centres / 32), atol=1e-5)
    np.testing.assert_allclose(model.forward(np.full(hr.shape, 7.0, np.float32)), 7.0, atol=1e-4)


def test_the_window_sets_the_contrast_kept_near_the_lr_nyquist_frequency():
    hr = Grid((64, 8, 8), np.eye(4))
    lr = scaled_grid(hr, (2, 1, 1))
    j = np.arange(64)
    near_nyquist = (np.cos(2 * np.pi * 15 * j / 64)[:, None, None] * np.ones((1, 8, 8))).astype(np.float32)  # LR Nyquist: 16
    scale, offset = axis_aligned_mapping(voxel_mapping(hr, lr))
    sampled = np.cos(2 * np.pi * 15 * (offset[0] + scale[0] * np.arange(32)) / 64)  # the wave at the LR centres

    def contrast(window):  # the fraction of the wave's amplitude the LR image keeps
        line = KSpaceModel(hr, lr, window).forward(near_nyquist)[:, 4, 4]
        return float(np.dot(line, sampled) / np.dot(sampled, sampled))

    assert contrast("none") == pytest.approx(1.0, abs=1e-4)  # a scanner keeps all of it
    for window, taper in WINDOWS.items():  # a window keeps exactly its weight at that frequency
        assert contrast(window) == pytest.approx(float(taper(np.array(15 / 16))), abs=1e-4), window
    assert contrast("hann") < 0.01


def test_simulate_kspace_end_to_end(tmp_path):
    from mrsr_cli.app.verbs import simulate_file

    hr_path = save_nifti(tmp_path / "hr.nii.gz", phantom((32, 30, 28)), make_affine((1.0, 1.0, 1.2), oblique=True))
    info = simulate_file(hr_path, tmp_path / "k.nii.gz", factor=(2, 2, 2), acquisition="kspace", window="hann")
    simulate_file(hr_path, tmp_path / "g.nii.gz", factor=(2, 2, 2))
    k, g = nib.load(tmp_path / "k.nii.gz"), nib.load(tmp_path / "g.nii.gz")
    np.testing.assert_allclose(k.affine, g.affine, atol=1e-6)  # the same LR grid in world coordinates
    assert k.shape == g.shape and k.get_fdata().min() >= 0  # a magnitude image
    hr = nib.load(hr_path)
    expected = np.abs(KSpaceModel(Grid(hr.shape, hr.affine), Grid(k.shape, k.affine), "hann")
                      .forward(hr.get_fdata(dtype=np.float32)))
    np.testing.assert_allclose(k.get_fdata(), expected, rtol=1e-5, atol=1e-3)
    side = json.loads((tmp_path / "k.json").read_text())
    assert side["acquisition"] == "kspace" and side["window"] == "hann" and "fwhm_mm" not in side
    assert info["acquisition"] == "kspace"


@pytest.mark.parametrize("args,words", [
    (["--acquisition", "spiral"], "--acquisition must be one of"),
    (["--window", "hann"], "--window applies to --acquisition kspace"),
    (["--acquisition", "kspace", "--window", "kaiser"], "--window must be one of"),
    (["--acquisition", "kspace", "--fwhm", "3"], "--fwhm does not apply"),
    (["--acquisition", "kspace", "--psf", "box"], "--psf does not apply"),
])
def test_simulate_kspace_usage_errors(tmp_path, args, words):
    from conftest import run_cli

    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((16, 16, 16)), make_affine())
    proc = run_cli("simulate", hr, tmp_path / "lr.nii.gz", "--factor", "2", *args)
    assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lr.nii.gz").exists()
