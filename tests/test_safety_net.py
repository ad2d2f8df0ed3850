"""The safety net (mrsr_cli.methods.safety): a network that loses to spline one scale down is
replaced by spline, one that wins is kept, and the CLI records and says so."""

import json

import numpy as np
import pytest

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.data.geometry import upscaled_grid
from mrsr_cli.data.interpolate import resample
from mrsr_cli.data.io import Volume
from mrsr_cli.methods.safety import apply_safety_net, network_weight


def _input(shape=(32, 34, 30)):
    data = (phantom(shape) * 100).astype(np.float32)
    return Volume(data, make_affine((2.0, 2.0, 2.0), oblique=True))


def test_a_network_that_loses_one_scale_down_is_replaced_by_spline():
    volume = _input()
    target = upscaled_grid(volume.grid, (2.0, 2.0, 2.0))
    rng = np.random.default_rng(0)

    def noisy(coarse, grid):  # spline plus noise: worse than spline everywhere
        return resample(coarse.data, coarse.grid, grid, order=3) + rng.normal(0, 50, grid.shape).astype(np.float32)

    assert network_weight(volume, (2, 2, 2), noisy).mean() < 0.01
    spline = resample(volume.data, volume.grid, target, order=3)
    out, info = apply_safety_net(spline + 50.0, volume, target, noisy, (2, 2, 2))
    assert np.abs(out - spline).mean() < 0.5  # of the network's +50
    assert info["BlendedFraction"] > 0.99 and info["NetworkWeightMean"] < 0.01


def test_a_network_that_wins_one_scale_down_is_kept_untouched():
    volume = _input()
    target = upscaled_grid(volume.grid, (2.0, 2.0, 2.0))

    def oracle(coarse, grid):  # gives back the truth: no error at all
        assert grid.shape == volume.grid.shape
        return volume.data.copy()

    network_out = np.full(target.shape, 7.0, np.float32)
    out, info = apply_safety_net(network_out, volume, target, oracle, (2, 2, 2))
    assert out is network_out and info["BlendedFraction"] == 0.0 and info["NetworkWeightMean"] == 1.0


def test_a_half_losing_network_is_blended_only_where_it_loses():
    volume = _input()
    half = np.zeros(volume.grid.shape, bool)
    half[:16] = True

    def left_good(coarse, grid):  # the truth on one half, noise on the other
        spline = resample(coarse.data, coarse.grid, grid, order=3)
        return np.where(half, volume.data, spline + 60.0).astype(np.float32)

    weight = network_weight(volume, (2, 2, 2), left_good)
    assert weight[:8].min() == 1.0 and weight[24:].mean() < 0.01


def test_too_small_an_input_is_left_as_it_is():
    volume = Volume(np.ones((10, 10, 10), np.float32), np.eye(4))
    target = upscaled_grid(volume.grid, (2.0, 2.0, 2.0))
    out = np.zeros(target.shape, np.float32)
    same, info = apply_safety_net(out, volume, target, lambda c, g: None, (2, 2, 2))
    assert same is out and "Skipped" in info


def test_upscale_records_the_safety_net_and_off_turns_it_off(tmp_path):
    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((24, 26, 22)) * 100, make_affine((2.0, 2.0, 2.0)))
    proc = run_cli("upscale", lr, tmp_path / "a.nii.gz", "--factor", "2", "--ensemble", "1")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "a.json").read_text())["SafetyNet"]
    assert set(record) >= {"CheckedWith", "BlendedFraction", "NetworkWeightMean"}
    assert record["CheckedWith"] == {"psf": "gaussian", "fwhm_scale": [1.0, 1.0, 1.0]}  # simulate's, as assumed
    warned = [line for line in proc.stderr.splitlines() if "one scale down" in line]
    assert len(warned) == (1 if record["BlendedFraction"] > 0.05 else 0)
    proc = run_cli("upscale", lr, tmp_path / "b.nii.gz", "--factor", "2", "--ensemble", "1", "--safety-net", "off")
    assert proc.returncode == 0 and "SafetyNet" not in json.loads((tmp_path / "b.json").read_text())
    told = run_cli("upscale", lr, tmp_path / "c.nii.gz", "--factor", "2", "--ensemble", "1", "--input-psf", "kspace")
    assert told.returncode == 0, told.stderr
    sidecar = json.loads((tmp_path / "c.json").read_text())
    # told a scanner's k-space truncation: the default network on the input matched to its PSF, k-space
    # data consistency, checked the same way
    assert sidecar["Model"] == "default" and "InputMatchedToPSF" in sidecar and sidecar["InputPSF"]["Shape"] == "kspace"
    assert sidecar["SafetyNet"]["CheckedWith"] == {"acquisition": "kspace"} and "DataConsistency" in sidecar
    bad = run_cli("upscale", lr, tmp_path / "d.nii.gz", "--factor", "2", "--safety-net", "maybe")
    assert bad.returncode == 2 and "--safety-net" in bad.stderr and not (tmp_path / "d.nii.gz").exists()


@pytest.mark.parametrize("name,factor,words", [
    ("sub-01_T2w.nii.gz", "2", "model default trained on T1w"),
    ("sub-01_T1w.nii.gz", "8", "factor 8 is beyond what model default trained on"),
])
def test_a_request_outside_the_training_is_warned_of_in_one_line(tmp_path, name, factor, words):
    lr = save_nifti(tmp_path / name, phantom((16, 18, 14)) * 100, make_affine((4.0, 4.0, 4.0)))
    proc = run_cli("upscale", lr, tmp_path / "out.nii.gz", "--factor", factor, "--ensemble", "1", "--safety-net", "off")
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if words in line] and "Traceback" not in proc.stderr


def test_a_request_inside_the_training_is_not_warned_of(tmp_path):
    lr = save_nifti(tmp_path / "sub-01_T1w.nii.gz", phantom((16, 18, 14)) * 100, make_affine((2.0, 2.0, 2.0)))
    proc = run_cli("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--ensemble", "1", "--safety-net", "off")
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
