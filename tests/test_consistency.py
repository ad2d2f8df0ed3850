"""Data consistency after the network (`upscale --consistency`, mrsr_cli.methods.consistency)."""

import json

import nibabel as nib
import numpy as np
import pytest
from conftest import make_affine, phantom, run_cli, save_nifti

from mrsr_cli.methods.consistency import back_project, estimate_noise_sigma, make_consistent, parse_mode
from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.data.geometry import Grid, scaled_grid
from mrsr_cli.data.io import Volume
from mrsr_cli.degrade.observation import ObservationModel, apply_axis_matrices


def _oblique_pair(factor=(2, 2, 3)):
    """An oblique, radiological HR grid and the FOV-preserving LR grid of ``factor`` (mm per voxel: 1, 1.2, 0.9)."""
    hr = Grid((40, 44, 36), make_affine((1.0, 1.2, 0.9), oblique=True, radiological=True))
    return hr, scaled_grid(hr, factor)


@pytest.mark.parametrize("psf", ["gaussian", ("gaussian", "gaussian", "box")])
def test_axis_matrices_are_the_observation_model(psf):
    hr, lr = _oblique_pair()
    model = ObservationModel(hr, lr, psf=psf)
    x = phantom(hr.shape, seed=2)
    y = np.random.default_rng(1).random(lr.shape, dtype=np.float32)
    matrices = model.axis_matrices()
    assert [m.shape for m in matrices] == [(n_lr, n_hr) for n_lr, n_hr in zip(lr.shape, hr.shape)]
    np.testing.assert_allclose(apply_axis_matrices(x, matrices), model.forward(x), rtol=0, atol=1e-4 * x.max())
    np.testing.assert_allclose(apply_axis_matrices(y, matrices, transpose=True), model.adjoint(y), rtol=0, atol=1e-5)


def test_back_projection_approaches_the_truth_when_the_input_is_noiseless():
    hr, lr = _oblique_pair()
    model = ObservationModel(hr, lr)
    truth = phantom(hr.shape, seed=3)
    y = model.forward(truth)
    guess = model.adjoint(y) * np.float32(truth.sum() / model.adjoint(y).sum())  # a blurred guess of the right mean
    errors, residuals = [], []
    for n in range(4):
        x, info = back_project(guess, y, model.axis_matrices(), iterations=n)
        assert info["Iterations"] == n
        errors.append(float(np.linalg.norm(x - truth)))
        residuals.append(info["ResidualRMSAfter"])
    assert all(b < a for a, b in zip(errors, errors[1:]))  # closer to the truth at every step (Craig's method)
    assert all(b < a for a, b in zip(residuals, residuals[1:]))
    assert residuals[-1] < 0.3 * residuals[0]


def test_noise_estimate_reads_noise_not_anatomy():
    from scipy import ndimage

    clean = ndimage.gaussian_filter(phantom((48, 48, 48), seed=1), 1.0)  # an LR image carries its PSF
    top = float(np.percentile(clean, 99.5))
    assert estimate_noise_sigma(clean) < 0.01 * top  # smooth anatomy is not noise
    rng = np.random.default_rng(0)
    for sigma in (0.005, 0.01, 0.03):
        noisy = clean + rng.normal(0, sigma * top, clean.shape).astype(np.float32)
        assert estimate_noise_sigma(noisy) == pytest.approx(sigma * top, rel=0.2)


def test_auto_fits_a_noiseless_input_and_leaves_a_noisy_one():
    hr, lr = _oblique_pair((2, 2, 2))
    model = ObservationModel(hr, lr)
    truth = phantom(hr.shape, seed=5)
    from scipy import ndimage

    guess = ndimage.gaussian_filter(truth, 1.5)  # a network's error: too smooth
    clean = Volume(model.forward(truth), lr.affine)
    out, info = make_consistent(guess, clean, hr, "auto")
    assert info["Mode"] == "auto" and info["Iterations"] >= 1
    assert np.linalg.norm(out - truth) < 0.8 * np.linalg.norm(guess - truth)
    noise = np.random.default_rng(2).normal(0, 0.05 * truth.max(), lr.shape).astype(np.float32)
    noisy = Volume(clean.data + noise, lr.affine)
    out, info = make_consistent(truth, noisy, hr, "auto")  # the residual of the truth itself is noise: nothing to fit
    assert info["Iterations"] == 0 and np.array_equal(out, truth)
    forced, info = make_consistent(truth, noisy, hr, 3)  # a fixed count ignores the noise, and fits it
    assert info["Mode"] == "fixed" and info["Iterations"] == 3 and info["NoiseSigma"] == 0
    assert np.linalg.norm(forced - truth) > 0.1 * np.linalg.norm(noise)
    assert make_consistent(guess, noisy, hr, "off") == (guess, {})
    # a model that learned another degradation (real pairs, thick slices): auto leaves it, a fixed count runs
    out, info = make_consistent(guess, clean, hr, "auto", psf_known=False)
    assert out is guess and info["Iterations"] == 0 and "unknown" in info["Skipped"]
    assert make_consistent(guess, clean, hr, 2, psf_known=False)[1]["Iterations"] == 2
    # over the memory limit: auto says so and leaves the data, a fixed count is an error
    out, info = make_consistent(guess, clean, hr, "auto", memory_limit=guess.nbytes)
    assert out is guess and info["Skipped"] == "over the memory limit"
    with pytest.raises(MrsrError, match="memory limit"):
        make_consistent(guess, clean, hr, 2, memory_limit=guess.nbytes)


def test_parse_mode_errors():
    assert parse_mode(None) == "auto" and parse_mode("0") == 0
    for bad in ("3x", "-1", "51", "on"):
        with pytest.raises(UsageError, match="--consistency"):
            parse_mode(bad)


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_upscale_consistency_cli(tmp_path):
    hr_path = save_nifti(tmp_path / "hr.nii.gz", phantom((36, 40, 36), seed=6), make_affine((1.0, 1.0, 1.0), oblique=True))
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", hr_path, lr, "--factor", "2", check=0)
    outs = {}
    for mode in ("off", "auto", "4"):
        out = tmp_path / f"{mode}.nii.gz"
        run_cli("upscale", lr, out, "--like", hr_path, "--ensemble", "1", "--consistency", mode, check=0)
        outs[mode] = nib.load(out)
        assert np.allclose(outs[mode].affine, nib.load(hr_path).affine)  # world geometry: the --like grid
        sidecar = json.loads((tmp_path / f"{mode}.json").read_text())
        assert ("DataConsistency" in sidecar) == (mode != "off")
    assert json.loads((tmp_path / "4.json").read_text())["DataConsistency"]["Iterations"] == 4
    # the corrected output reproduces the input through simulate's model better than the network alone
    lr_img = nib.load(lr)
    model = ObservationModel(Grid(outs["off"].shape, outs["off"].affine), Grid(lr_img.shape, lr_img.affine))
    y = lr_img.get_fdata(dtype=np.float32)

    def misfit(img):
        return float(np.linalg.norm(model.forward(img.get_fdata(dtype=np.float32)) - y))

    assert misfit(outs["4"]) < 0.5 * misfit(outs["off"])
    # a noisy input: auto stops before the first iteration and the output is the network's, bit for bit
    noisy = tmp_path / "noisy.nii.gz"
    run_cli("simulate", hr_path, noisy, "--factor", "2", "--noise", "0.05", "--seed", "1", check=0)
    for mode in ("off", "auto"):
        run_cli("upscale", noisy, tmp_path / f"noisy-{mode}.nii.gz", "--like", hr_path, "--ensemble", "1",
                "--consistency", mode, check=0)
    assert json.loads((tmp_path / "noisy-auto.json").read_text())["DataConsistency"]["Iterations"] == 0
    assert np.array_equal(nib.load(tmp_path / "noisy-auto.nii.gz").get_fdata(), nib.load(tmp_path / "noisy-off.nii.gz").get_fdata())
    # usage errors: one line, exit 2, nothing written
    for args in (["--consistency", "3x"], ["--method", "spline", "--consistency", "auto"]):
        proc = run_cli("upscale", lr, tmp_path / "bad.nii.gz", "--factor", "2", *args)
        assert proc.returncode == 2 and "--consistency" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "bad.nii.gz").exists()


def test_consistency_skipped_on_a_rotated_target(tmp_path, caplog):
    hr, lr = _oblique_pair((2, 2, 2))
    rotated = Grid(hr.shape, make_affine((1.0, 1.0, 1.0)))  # axes not parallel to the oblique input's
    data = phantom(hr.shape, seed=7)
    with caplog.at_level("WARNING", logger="mrsr"):
        out, info = make_consistent(data, Volume(np.ones(lr.shape, np.float32), lr.affine), rotated, "auto")
    assert out is data and info["Iterations"] == 0 and "not parallel" in caplog.text


def test_the_correction_stays_inside_the_inputs_field_of_view():
    """A 38-slice HR grid at (1,1,4): the 9 LR slices leave HR slices 0 and 37 outside the LR field
    of view, where upscale writes zeros.  The LR edge slices, whose PSF reaches them, are left out
    of the data term; those output slices stay zero, and the rest gets closer to the truth even
    though the truth has signal out there.  The whole operator instead pushes that signal into the
    slices next to the edge (round 19's (1,1,4) loss)."""
    from scipy import ndimage

    from mrsr_cli.methods.consistency import in_view_operator

    hr = Grid((40, 44, 38), make_affine((1.0, 1.0, 1.0), oblique=True))
    lr = scaled_grid(hr, (1, 1, 4))
    model = ObservationModel(hr, lr)
    outside = model.outside_lr_fov()
    assert [list(np.flatnonzero(o)) for o in outside] == [[], [], [0, 37]]
    _, rows = in_view_operator(model)
    assert [len(r) for r in rows] == [40, 44, 7] and list(rows[2]) == list(range(1, 8))
    truth = phantom(hr.shape, seed=8) + 30.0  # signal everywhere, the edge slices too
    guess = ndimage.gaussian_filter(truth, (0, 0, 1.5))
    guess[:, :, outside[2]] = 0.0  # what upscale writes outside the input's field of view
    inside = ~outside[2]
    out, info = make_consistent(guess, Volume(model.forward(truth), lr.affine), hr, 5)
    assert info["InputVoxelsUsed"] == 40 * 44 * 7
    assert np.array_equal(out[:, :, ~inside], guess[:, :, ~inside])

    def error(x, slices):
        return float(np.linalg.norm(x[:, :, slices] - truth[:, :, slices]))

    whole, _ = back_project(guess, model.forward(truth), model.axis_matrices(), iterations=5)
    edge = [1, 2, 3, 34, 35, 36]
    assert error(out, inside) < 0.97 * error(guess, inside)
    assert error(out, edge) < 1.02 * error(guess, edge) and error(whole, edge) > 1.2 * error(guess, edge)
