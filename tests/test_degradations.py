"""The degradations of issue 33 beyond the PSF and plain k-space truncation: the windowed-sinc
slice profile, partial Fourier (complex, with its exact adjoint), bias field and gamma, and
k-space truncation in training patches (no wrap-round at the patch's faces)."""

import json

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.data.geometry import Grid, scaled_grid
from mrsr_cli.degrade.kspace import KSpaceModel, equivalent_gaussian_fwhm
from mrsr_cli.degrade.observation import ObservationModel
from mrsr_cli.degrade.psf import PSF_SHAPES, windowed_sinc_kernel


@pytest.mark.parametrize("width", [2.0, 3.0, 4.5])
def test_the_windowed_sinc_slice_profile_has_the_slice_thickness_as_fwhm(width):
    kernel = windowed_sinc_kernel(width)
    assert kernel.sum() == pytest.approx(1.0)
    fine = windowed_sinc_kernel(width * 8)  # sampled finely, its half maximum lies at ±width/2 (in 1/8 voxels)
    centre = len(fine) // 2
    above = np.flatnonzero(fine >= 0.5 * fine[centre]) - centre
    assert (above.max() - above.min() + 1) == pytest.approx(width * 8, abs=1.5)
    # softer-edged than a box of the same thickness, and narrower-tailed than a Gaussian
    assert PSF_SHAPES["box"].gaussian_fwhm < PSF_SHAPES["sinc"].gaussian_fwhm < 1.0


def test_the_sinc_slice_profile_observation_model_has_an_exact_adjoint():
    hr = Grid((20, 20, 40), np.eye(4))
    model = ObservationModel(hr, scaled_grid(hr, (1, 1, 4)), (1.0, 1.0, 3.0), ("gaussian", "gaussian", "sinc"))
    rng = np.random.default_rng(0)
    x, y = rng.random(hr.shape, dtype=np.float32), rng.random(model.lr_grid.shape, dtype=np.float32)
    lhs, rhs = float(np.vdot(model.forward(x), y)), float(np.vdot(x, model.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_partial_fourier_is_complex_with_an_exact_adjoint_and_blurs_only_its_axis():
    hr = Grid((32, 32, 32), make_affine((1.0, 1.0, 1.0), oblique=True))
    lr = scaled_grid(hr, (2, 2, 2))
    full, partial = KSpaceModel(hr, lr), KSpaceModel(hr, lr, partial_fourier=0.625)
    x = phantom((32, 32, 32)).astype(np.float32)
    rng = np.random.default_rng(2)
    y = (rng.random(lr.shape) + 1j * rng.random(lr.shape)).astype(np.complex64)
    lhs, rhs = float(np.real(np.vdot(y, partial.forward(x)))), float(np.vdot(x, partial.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)
    assert np.iscomplexobj(partial.forward(x)) and not np.iscomplexobj(full.forward(x))
    # the half of k-space kept whole gives the real part of what the full truncation gives
    # only where the missing frequencies carry nothing: a constant image keeps its value
    const = np.full(hr.shape, 3.0, np.float32)
    np.testing.assert_allclose(np.abs(partial.forward(const)), 3.0, atol=1e-4)
    with pytest.raises(Exception, match="complex"):
        partial.axis_matrices()


def test_simulate_partial_fourier_bias_and_gamma_end_to_end(tmp_path):
    from mrsr_cli.app.verbs import simulate_file

    hr_path = save_nifti(tmp_path / "hr.nii.gz", phantom((32, 30, 28)) * 100, make_affine((1.0, 1.0, 1.2)))
    simulate_file(hr_path, tmp_path / "pf.nii.gz", factor=(2, 2, 2), acquisition="kspace", partial_fourier=0.625)
    simulate_file(hr_path, tmp_path / "k.nii.gz", factor=(2, 2, 2), acquisition="kspace")
    pf, k = (nib.load(tmp_path / f"{n}.nii.gz").get_fdata() for n in ("pf", "k"))
    assert pf.min() >= 0 and not np.allclose(pf, k)  # a magnitude image, and not the full truncation
    side = json.loads((tmp_path / "pf.json").read_text())
    assert side["partial_fourier"] == 0.625
    a = simulate_file(hr_path, tmp_path / "b1.nii.gz", factor=(2, 2, 2), bias=0.3, gamma=1.5, seed=4)
    simulate_file(hr_path, tmp_path / "b2.nii.gz", factor=(2, 2, 2), bias=0.3, gamma=1.5, seed=4)
    simulate_file(hr_path, tmp_path / "b0.nii.gz", factor=(2, 2, 2))
    b1, b2, b0 = (nib.load(tmp_path / f"{n}.nii.gz").get_fdata() for n in ("b1", "b2", "b0"))
    np.testing.assert_array_equal(b1, b2)  # the bias is drawn from the seed
    assert not np.allclose(b1, b0)
    assert a["bias_std"] == 0.3 and a["gamma"] == 1.5


@pytest.mark.parametrize("args,words", [
    (["--acquisition", "kspace", "--partial-fourier", "0.3"], "--partial-fourier must be in [0.5, 1]"),
    (["--partial-fourier", "0.625"], "--partial-fourier applies to --acquisition kspace"),
    (["--bias", "2"], "--bias must be in"),
    (["--gamma", "0"], "--gamma must be in"),
    (["--slice-thickness", "3", "--slice-profile", "lorentz"], "--slice-profile must be one of"),
])
def test_simulate_degradation_usage_errors(tmp_path, args, words):
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((16, 16, 16)), make_affine())
    proc = run_cli("simulate", hr, tmp_path / "lr.nii.gz", "--factor", "1,1,2", *args)
    assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lr.nii.gz").exists()


def test_kspace_training_patches_match_the_whole_volume_away_from_the_faces():
    """The training input of a k-space patch is the whole volume's truncation, splined back, to
    within what the spline's edge effects leave: the mirrored patch does not ring at its faces."""
    from mrsr_cli.data.geometry import resized_grid
    from mrsr_cli.data.interpolate import make_resampler
    from mrsr_cli.degrade.simulate import lowres_on_hr_grid

    volume = phantom((48, 48, 48)).astype(np.float32)
    grid = Grid(volume.shape, np.eye(4))
    lr_grid = resized_grid(grid, (2.0, 2.0, 2.0))
    whole = make_resampler(np.abs(KSpaceModel(grid, lr_grid).forward(volume)), lr_grid, grid, order=3).full()
    patch = lowres_on_hr_grid(volume[8:40, 8:40, 8:40], (1, 1, 1), (2, 2, 2), acquisition="kspace")
    inner = (slice(6, 26),) * 3
    error = np.abs(patch[inner] - whole[8:40, 8:40, 8:40][inner])
    assert patch.shape == (32, 32, 32) and error.max() < 0.05 * float(volume.max())


def test_the_sampler_draws_kspace_patches_and_tells_their_width(tmp_path):
    from mrsr_cli.training.config import TrainConfig
    from mrsr_cli.training.sampler import PatchSampler

    cfg = TrainConfig(inputs=["x"], output="m.safetensors", augment=["psf"], psf_input=True, kspace_fraction=1.0,
                      scales=[[2.0, 2.0, 2.0]]).validated()
    sampler = PatchSampler([], cfg)
    draws = [sampler.lr_psf(np.random.default_rng(i)) for i in range(40)]
    assert {window for _, _, window in draws} == {"none", "tukey", "hamming", "hann"}
    assert all(width == equivalent_gaussian_fwhm(window) for _, width, window in draws)
    with pytest.raises(Exception, match="kspace-fraction"):
        TrainConfig(inputs=["x"], output="m.safetensors", kspace_fraction=0.5).validated()


def test_kspace_data_consistency_gives_the_input_back():
    """--input-psf kspace: the corrected output, truncated in k-space, is the input (its frequencies
    below the input's Nyquist frequency are the input's)."""
    from mrsr_cli.data.interpolate import resample
    from mrsr_cli.data.io import Volume
    from mrsr_cli.methods.consistency import make_consistent

    hr = Grid((32, 32, 32), make_affine((1.0, 1.0, 1.0), oblique=True))
    lr_grid = scaled_grid(hr, (2, 2, 2))
    truth = (phantom((32, 32, 32)) * 100).astype(np.float32)
    model = KSpaceModel(hr, lr_grid)
    volume = Volume(model.forward(truth), lr_grid.affine)
    guess = resample(volume.data, lr_grid, hr, order=3)
    before = np.abs(model.forward(guess) - volume.data).max()
    out, info = make_consistent(guess, volume, hr, 3, psf="kspace")
    after = np.abs(model.forward(out) - volume.data).max()
    assert info["Iterations"] >= 1 and after < 0.01 * before
    assert np.linalg.norm(out - truth) < np.linalg.norm(guess - truth)


def test_input_psf_kspace_takes_no_fwhm(tmp_path):
    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((16, 16, 16)), make_affine((2.0, 2.0, 2.0)))
    proc = run_cli("upscale", lr, tmp_path / "o.nii.gz", "--factor", "2", "--input-psf", "kspace", "--input-fwhm", "2")
    assert proc.returncode == 2 and "--input-fwhm does not apply to --input-psf kspace" in proc.stderr
    assert not (tmp_path / "o.nii.gz").exists()
