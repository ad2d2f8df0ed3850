"""DNSP priors as loss terms and the EDSR-style 3-D network, trained end to end."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.training.losses import parse_loss
from mrsr_cli.training.priors import LearnedSharpness, laplacian_kernel, lowrank, sharpness


def test_lowrank_gradient_matches_finite_differences_and_ranks_patches():
    torch.manual_seed(0)
    # singular values near δ = 0.01, where the surrogate has a slope
    x = (0.004 * torch.randn(1, 1, 4, 4, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: lowrank(t, None, None, {}), (x,), eps=1e-7, atol=1e-5)
    u = torch.rand(12, dtype=torch.float64)
    rank_one = torch.einsum("i,j,k->ijk", u, u, u)[None, None]
    noisy = rank_one + 0.05 * torch.randn_like(rank_one)
    assert float(lowrank(rank_one, None, None, {})) == pytest.approx(1.0, abs=1e-4)
    assert float(lowrank(noisy, None, None, {})) > 10


def test_sharpness_is_larger_on_a_sharp_volume_and_its_gradient_flows():
    from scipy import ndimage

    sharp = phantom((24, 24, 24), seed=1) / 100
    blurred = ndimage.gaussian_filter(sharp, 1.5)
    v_sharp = -float(sharpness(torch.from_numpy(sharp)[None, None], None, None, {}))
    v_blur = -float(sharpness(torch.from_numpy(blurred)[None, None], None, None, {}))
    assert v_sharp > 3 * v_blur > 0
    x = torch.from_numpy(blurred)[None, None].requires_grad_()
    sharpness(x, None, None, {}).backward()
    assert x.grad.abs().sum() > 0
    assert laplacian_kernel().sum() == 0


def test_learned_sharpness_filters_pick_patches_and_learn_from_them():
    from mrsr_cli.training.volumes import TrainingVolume

    data = phantom((48, 48, 48), seed=2) / 100
    vol = TrainingVolume(data, (1.0, 1.0, 1.0), np.argwhere(data > 0.1))
    term = LearnedSharpness(seed=3)
    assert torch.allclose(term.filters, laplacian_kernel().expand_as(term.filters), atol=0.05)  # Laplacian + small noise
    term.setup([vol], seed=0)
    energy = [torch.nn.functional.conv3d(p, laplacian_kernel()).pow(2).sum() for p in (term.sharp, term.smooth)]
    assert energy[0] > energy[1]
    before = float(term.regulariser().detach())
    opt = torch.optim.Adam(term.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        term.regulariser().backward()
        opt.step()
    assert float(term.regulariser().detach()) < before
    # the network's part does not train the filters
    pred = torch.rand(2, 1, 10, 10, 10, requires_grad=True)
    term.filters.grad = None
    (-torch.nn.functional.conv3d(pred, term.unit_filters().detach()).var()).backward()
    assert term.filters.grad is None and pred.grad is not None
    assert len(term.metadata()["filters"]) == 8


@pytest.mark.parametrize("text, message", [("l1+-5e-3*sharpness", "needs a positive weight"),
                                           ("l1+1e-5*low-rank", "unknown loss term 'low-rank'")])
def test_bad_prior_expressions(text, message):
    from mrsr_cli.errors import UsageError

    with pytest.raises(UsageError, match=message):
        parse_loss(text)


def _train_edsr(tmp_path, hr, out, *extra):
    loss = "l1+1e-5*lowrank+5e-3*sharpness+5e-3*learned-sharpness"
    return run_cli("train", hr, "-o", tmp_path / out, "--arch", "edsr3d", "--arch-param", "blocks=1", "--arch-param", "filters=4",
                   "--loss", loss, "--patch", "12", "--batch", "2", "--patches-per-epoch", "8", "--seed", "3",
                   "--precision", "fp32", "--threads", "1", "--scales", "2,2,2", "--augment", "flip", *extra, check=0)


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_edsr3d_with_every_prior_trains_resumes_and_upscales(tmp_path):
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((32, 32, 32), seed=4), make_affine())
    _train_edsr(tmp_path, hr, "full.safetensors", "--epochs", "2")
    _train_edsr(tmp_path, hr, "half.safetensors", "--epochs", "1")
    _train_edsr(tmp_path, hr, "resumed.safetensors", "--epochs", "2", "--resume", tmp_path / "half.ckpt.safetensors")
    weights = {}
    for name in ("full", "resumed"):
        with safe_open(str(tmp_path / f"{name}.safetensors"), framework="np") as fh:
            weights[name] = {k: fh.get_tensor(k) for k in fh.keys()}
            meta = json.loads(fh.metadata()["mrsr"])
    for k in weights["full"]:
        np.testing.assert_allclose(weights["resumed"][k], weights["full"][k], rtol=1e-5, atol=1e-7)
    assert meta["architecture"] == "edsr3d" and meta["training"]["loss"] == "l1+1e-05*lowrank+0.005*sharpness+0.005*learned-sharpness"
    assert np.array(meta["loss_state"]["learned-sharpness"]["filters"]).shape == (8, 1, 3, 3, 3)
    records = [json.loads(line) for line in (tmp_path / "full.log.jsonl").read_text().splitlines()]
    assert set(records[-1]["loss_terms"]) == {"l1", "lowrank", "sharpness", "learned-sharpness"}
    # the tiled engine runs it, bf16 on CPU included
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", hr, lr, "--factor", "2", check=0)
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"sr-{precision}.nii.gz"
        run_cli("upscale", lr, out, "--factor", "2", "--model", tmp_path / "full.safetensors", "--precision", precision,
                "--tile-size", "8", check=0)
        assert json.loads((tmp_path / f"sr-{precision}.json").read_text())["ModelArchitecture"] == "edsr3d"
