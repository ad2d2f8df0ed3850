"""Telling a network (and LRTV) how blurred the input is: `train --psf-input`, `upscale
--input-fwhm/--input-psf`, the PSF channels of mrsr_cli.models.channels."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from conftest import make_affine, phantom, run_cli, train_small as _train
from mrsr_cli.data.geometry import Grid
from mrsr_cli.training.sampler import PatchSampler
from mrsr_cli.training.config import TrainConfig
from mrsr_cli.training.volumes import load_training_volume


def test_psf_channels_say_how_blurred_each_lr_patch_is(train_volume):
    """With --psf-input each patch carries psf_encoding of its drawn PSF: exactly 0 when the draw
    is simulate's Gaussian of one LR voxel (and the ILR patch is then the one simulate's PSF
    gives), clearly below 0 when the LR patch is sharper (more Laplacian energy), clearly above
    when it is blurrier; about one patch in three keeps simulate's PSF and FWHMs below one HR
    voxel read -0.5 at x2 (nothing is blurred)."""
    vol = load_training_volume(train_volume)
    base = {"inputs": [], "output": "m.safetensors", "patch": 16, "scales": [[2, 2, 2]], "augment": []}
    plain = PatchSampler([vol], TrainConfig.from_dict(base, require_paths=False))
    told = PatchSampler([vol], TrainConfig.from_dict({**base, "augment": ["psf"], "psf_input": True}, require_paths=False))
    codes = []
    for i in range(45):
        ilr0, hr0, *_ = plain.patch(np.random.default_rng(i))
        ilr1, hr1, _, _, _, code = told.patch(np.random.default_rng(i))
        np.testing.assert_array_equal(hr0, hr1)
        assert np.ptp(code) == 0  # one PSF on every axis at an isotropic factor
        energy = np.std(ndimage.laplace(ilr1)) / np.std(ndimage.laplace(ilr0))
        if code[0] == 0:
            np.testing.assert_allclose(ilr1, ilr0, atol=1e-6)
        elif code[0] < -0.15:
            assert energy > 1.02, (code, energy)
        elif code[0] > 0.15:
            assert energy < 0.98, (code, energy)
        codes.append(code[0])
    codes = np.array(codes)
    assert 6 <= (codes == 0).sum() <= 24 and codes.min() == -0.5 and codes.max() > 0.2


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_psf_input_training_init_and_upscale(tmp_path, train_volume):
    vol = train_volume
    plain = _train(tmp_path, vol, "p.safetensors", "--epochs", "1")
    assert plain.returncode == 0, plain.stderr
    proc = _train(tmp_path, vol, "q.safetensors", "--epochs", "2", "--psf-input", "--augment", "psf",
                  "--init-from", tmp_path / "p.safetensors", "--val", vol)
    assert proc.returncode == 0, proc.stderr
    curve = [json.loads(line) for line in (tmp_path / "q.log.jsonl").read_text().splitlines()]
    gains = [r["val_gain_per_factor"] for r in curve if "val_gain_per_factor" in r]
    assert len(gains) == 2 and all(len(g) == 2 for g in gains)  # x2 at simulate's PSF and at half its FWHM
    from safetensors import safe_open

    with safe_open(str(tmp_path / "q.safetensors"), framework="np") as fh:
        meta = json.loads(fh.metadata()["mrsr"])
    assert meta["params"]["psf_channels"] == 3 and meta["params"]["in_channels"] == 7
    assert meta["training"]["psf_input"] is True
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", vol, lr, "--factor", "2", "--fwhm", "1", check=0)  # sharper than simulate's default
    outs = {}
    for tag, extra in (("assumed", []), ("told", ["--input-fwhm", "1"])):
        out = tmp_path / f"{tag}.nii.gz"
        run_cli("upscale", lr, out, "--model", tmp_path / "q.safetensors", "--like", vol, "--ensemble", "1", *extra, check=0)
        outs[tag] = nib.load(out).get_fdata()
        sidecar = json.loads((tmp_path / f"{tag}.json").read_text())
        assert sidecar["InputPSF"]["Encoding"] == ([-0.5] * 3 if extra else [0.0] * 3)
        assert sidecar["InputPSF"]["FWHM"] == ([1.0] * 3 if extra else [2.0] * 3)
    assert not np.array_equal(outs["assumed"], outs["told"])  # the channels reach the network
    # a model without PSF channels runs, and says it ignores the option
    proc = run_cli("upscale", lr, tmp_path / "p.nii.gz", "--model", tmp_path / "p.safetensors", "--factor", "2",
                   "--input-fwhm", "1")
    assert proc.returncode == 0 and "--input-fwhm/--input-psf are ignored" in proc.stderr
    # usage errors: no psf augmentation; fine-tuning a PSF-aware model without it; a bad FWHM
    proc = _train(tmp_path, vol, "x.safetensors", "--epochs", "1", "--psf-input")
    assert proc.returncode == 2 and "--psf-input needs the psf augmentation" in proc.stderr
    proc = _train(tmp_path, vol, "y.safetensors", "--epochs", "1", "--init-from", tmp_path / "q.safetensors")
    assert proc.returncode == 2 and "--psf-input" in proc.stderr and not (tmp_path / "y.safetensors").exists()
    proc = run_cli("upscale", lr, tmp_path / "z.nii.gz", "--factor", "2", "--input-fwhm", "-1")
    assert proc.returncode == 2 and "--input-fwhm" in proc.stderr and not (tmp_path / "z.nii.gz").exists()


def test_input_psf_encoding_follows_the_target_axes():
    """The PSF channels are per *target* array axis: a target grid whose axes are the input's in
    another order (a permuted affine) reads the FWHM of the input axis it runs along."""
    from mrsr_cli.infer.engine import input_psf_encoding

    lr = Grid((10, 10, 5), np.diag([2.0, 2.0, 4.0, 1.0]))
    same = Grid((20, 20, 20), np.diag([1.0, 1.0, 1.0, 1.0]))
    permuted = Grid((20, 20, 20), np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 1]]))
    fwhm = (1.0, 2.0, 4.0)  # in input voxels: 0.5, 1, 1
    assert input_psf_encoding(lr, same, fwhm) == [-0.5, 0.0, 0.0]
    assert input_psf_encoding(lr, permuted, fwhm) == [0.0, 0.0, -0.5]
    assert input_psf_encoding(lr, same, (2.0, 2.0, 4.0), "box") == [-0.3202] * 3
    assert input_psf_encoding(lr, same) == [0.0, 0.0, 0.0]


def test_lrtv_inverts_the_psf_it_is_told():
    """LRTV inverts its observation model A: told that the LR image was not blurred (FWHM 0, as
    plain subsampling), its result reproduces the LR image through that A more closely than the
    result that assumed simulate's Gaussian does."""
    from mrsr_cli.data.io import Volume
    from mrsr_cli.methods.lrtv import lrtv
    from mrsr_cli.degrade.observation import ObservationModel
    from mrsr_cli.degrade.simulate import simulate_lowres

    hr = phantom((40, 44, 36), seed=5)
    grid = Grid(hr.shape, make_affine((1.0, 1.0, 1.0)))
    lr, lr_grid, _ = simulate_lowres(hr, grid, factor=(2, 2, 2), fwhm=(0.0, 0.0, 0.0))
    assumed, _ = lrtv(Volume(lr, lr_grid.affine), grid, lrtv_iterations=8, progress=False)
    told, _ = lrtv(Volume(lr, lr_grid.affine), grid, lrtv_iterations=8, progress=False, fwhm_mm=(0.0, 0.0, 0.0))
    sharp = ObservationModel(grid, lr_grid, (0.0, 0.0, 0.0))
    misfit = {name: np.linalg.norm(sharp.forward(x) - lr) for name, x in (("assumed", assumed), ("told", told))}
    assert misfit["told"] < 0.8 * misfit["assumed"], misfit


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_new_channels_only_keeps_the_starting_model_exactly(tmp_path, train_volume):
    """--new-channels-only trains nothing but the first-layer weights of the channels the run adds:
    every other tensor equals the starting model's, the new slices have moved off zero, and with
    the PSF channels at simulate's PSF (0) the output equals the starting model's bit for bit."""
    from safetensors import safe_open

    vol = train_volume
    assert _train(tmp_path, vol, "p.safetensors", "--epochs", "1").returncode == 0
    proc = _train(tmp_path, vol, "f.safetensors", "--epochs", "1", "--psf-input", "--augment", "psf", "--lr", "1e-3",
                  "--new-channels-only", "--init-from", tmp_path / "p.safetensors")
    assert proc.returncode == 0, proc.stderr
    tensors = {}
    for name in ("p", "f"):
        with safe_open(str(tmp_path / f"{name}.safetensors"), framework="np") as fh:
            tensors[name] = {k: fh.get_tensor(k) for k in fh.keys()}
    first = next(k for k in tensors["f"] if k.endswith("weight"))
    for key, value in tensors["p"].items():
        if key == first:  # channels: image, 3 factor maps, then the 3 new PSF maps
            np.testing.assert_array_equal(tensors["f"][key][:, :4], value)
            assert np.abs(tensors["f"][key][:, 4:]).max() > 0
        else:
            np.testing.assert_array_equal(tensors["f"][key], value)
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", vol, lr, "--factor", "2", check=0)
    for name in ("p", "f"):
        run_cli("upscale", lr, tmp_path / f"{name}.nii.gz", "--model", tmp_path / f"{name}.safetensors", "--like", vol,
                "--ensemble", "1", check=0)  # f was trained without flips: one pass for both
    np.testing.assert_array_equal(nib.load(tmp_path / "f.nii.gz").get_fdata(), nib.load(tmp_path / "p.nii.gz").get_fdata())
    proc = _train(tmp_path, vol, "g.safetensors", "--epochs", "1", "--new-channels-only")
    assert proc.returncode == 2 and "--new-channels-only needs --init-from" in proc.stderr
