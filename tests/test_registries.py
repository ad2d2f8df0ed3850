"""The extension points: architectures, methods, the channel contract read from metadata."""

import json

import numpy as np
import pytest
import torch

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.models.channels import allowed_flips, model_normalization_scale
from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.data.geometry import upscaled_grid
from mrsr_cli.data.io import load_volume
from mrsr_cli.methods import METHODS, method_options, run_method
from mrsr_cli.models import ARCHITECTURES, SRNetwork, build_model
from mrsr_cli.models.store import save_model
from mrsr_cli.training.config import complete_arch_params


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a == "edsr3d" else a for a in sorted(ARCHITECTURES)])
def test_every_architecture_follows_the_protocol(arch):
    net = build_model(arch, {"in_channels": 2})
    assert isinstance(net, SRNetwork) and net.in_channels == 2 and net.params["in_channels"] == 2
    # halo is the receptive field: an impulse moves outputs exactly halo voxels away, not one more
    centre = net.halo + 4
    x = torch.zeros(1, 2, *(2 * centre + 1,) * 3)
    x[0, 1, centre, centre, centre] = 1.0
    with torch.no_grad():
        diff = (net(x) - net(torch.zeros_like(x))).abs()[0, 0]
    reach = np.argwhere(diff.numpy() > 0)
    assert (np.abs(reach - centre).max()) == net.halo
    assert net.activation_bytes_per_voxel(2) < net.activation_bytes_per_voxel(4)


def test_architecture_parameters_are_checked_against_the_constructor():
    with pytest.raises(ValueError, match="no parameter 'blocks'"):
        build_model("recnn", {"blocks": 3})
    assert complete_arch_params("srcnn3d", {}) == {"residual": False}
    with pytest.raises(UsageError, match="set by the trainer"):
        complete_arch_params("recnn", {"in_channels": 3})
    proc = run_cli("train", "--dry-run", "--json", "--arch", "srcnn3d", "--layers", "4")
    assert proc.returncode == 2 and "no parameter 'layers'" in proc.stderr
    recipe = json.loads(run_cli("train", "--dry-run", "--json", "--arch-param", "filters=8", "--no-residual", check=0).stdout)
    assert recipe["arch_params"] == {"layers": 10, "filters": 8, "kernel": 3, "residual": False}


def test_methods_dispatch_and_refuse_options_they_do_not_take(tmp_path):
    vol = load_volume(save_nifti(tmp_path / "lr.nii.gz", phantom((12, 14, 10)), make_affine((2, 2, 2), oblique=True)))
    target = upscaled_grid(vol.grid, (2, 2, 2))
    data, info = run_method("spline", vol, target, order=1)
    assert data.shape == target.shape and info == {"SplineOrder": 1}
    assert set(method_options("cnn")) == {"model", "reference", "register", "ensemble", "input_fwhm", "input_psf", "consistency",
                                            "guidance", "mask", "safety_net", "adapt", "seed", "engine"}
    with pytest.raises(UsageError, match="model does not apply to method spline"):
        run_method("spline", vol, target, model="default")
    with pytest.raises(UsageError, match="unknown method"):
        run_method("bicubic", vol, target)
    assert set(METHODS) == {"cnn", "spline", "lrtv"}
    proc = run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / "o.nii.gz", "--factor", "2", "--method", "spline", "--model", "default")
    assert proc.returncode == 2 and "--model does not apply to --method spline" in proc.stderr
    assert not (tmp_path / "o.nii.gz").exists()


def test_normalisation_and_flips_come_from_the_model_metadata(tmp_path):
    data = np.arange(1, 1001, dtype=np.float32)
    assert model_normalization_scale({"normalization": {"method": "percentile", "percentile": 50}}, data) == pytest.approx(500.5)
    assert model_normalization_scale({"normalization": {}}, data) == pytest.approx(np.percentile(data, 99.5))
    with pytest.raises(MrsrError, match="unsupported normalization"):
        model_normalization_scale({"name": "m", "normalization": {"method": "zscore"}}, data)
    assert allowed_flips({"training": {"augment": ["flip", "permute"]}}) and allowed_flips({})
    assert not allowed_flips({"training": {"augment": ["permute"]}})
    # a model trained without flips runs one pass whatever --ensemble asks, and says so
    torch.manual_seed(0)
    model = save_model(tmp_path / "noflip.safetensors", build_model("recnn", {"layers": 2, "filters": 2}),
                       {"name": "noflip", "architecture": "recnn", "normalization": {}, "training": {"augment": ["permute"]}})
    src = save_nifti(tmp_path / "lr.nii.gz", phantom((12, 14, 10)), make_affine((2, 2, 2)))
    proc = run_cli("upscale", src, tmp_path / "o.nii.gz", "--factor", "2", "--model", model, "--ensemble", "4", check=0)
    assert "not trained with flips" in proc.stderr
    assert json.loads((tmp_path / "o.json").read_text())["SelfEnsemble"] == 1
