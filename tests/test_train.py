"""Training: loss goes down, overfitting beats spline, resume == uninterrupted, multiscale sampler."""

import json

import nibabel as nib
import numpy as np
import pytest
from safetensors import safe_open

from conftest import make_affine, phantom, run_cli, save_nifti, train_small as _train
from mrsr_cli.training.sampler import PatchSampler
from mrsr_cli.training.config import TrainConfig


def _weights(path):
    with safe_open(str(path), framework="np") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_resume_equals_uninterrupted(tmp_path, train_volume):
    _train(tmp_path, train_volume, "full.safetensors", "--epochs", "4", check=0)
    _train(tmp_path, train_volume, "half.safetensors", "--epochs", "2", check=0)
    _train(tmp_path, train_volume, "resumed.safetensors", "--epochs", "4", "--resume", tmp_path / "half.ckpt.safetensors", check=0)
    full, resumed, half = (_weights(tmp_path / f"{n}.safetensors") for n in ("full", "resumed", "half"))
    assert any(not np.array_equal(full[k], half[k]) for k in full)
    for k in full:
        np.testing.assert_allclose(resumed[k], full[k], rtol=1e-5, atol=1e-7)


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
@pytest.mark.parametrize("setup", [("--blind", "--loss", "mse"), ("--loss", "psnr")], ids=["paper", "factor-psnr"])
def test_loss_decreases_and_overfit_beats_spline(tmp_path, train_volume, setup):
    proc = run_cli("train", train_volume, "-o", tmp_path / "m.safetensors", "--layers", "4", "--filters", "8",
                   "--patch", "16", "--batch", "4", "--patches-per-epoch", "160", "--epochs", "3", "--lr", "2e-3",
                   "--augment", "", "--scales", "2,2,2", "--val", train_volume, "--seed", "0", "--threads", "2", "--json", *setup)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in (tmp_path / "m.log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in lines if "loss" in r]
    vals = [r for r in lines if "val_psnr" in r]
    if "mse" in setup:
        assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    else:  # dB relative to the spline input: at least 1 dB better by the end
        assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 1.0
    assert max(v["val_psnr"] for v in vals) > vals[0]["val_psnr_spline"] + 0.3
    meta = json.loads(_meta(tmp_path / "m.safetensors"))
    assert meta["training"]["scales"] == [[2.0, 2.0, 2.0]] and meta["training"]["data"][0]["sha256"]
    assert meta["references"] == []  # factor channels are inputs, not references
    # upscaling with the trained model keeps the input's intensity scale
    run_cli("simulate", train_volume, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz", "--factor", "2", "--model", tmp_path / "m.safetensors", check=0)
    sr, hr = nib.load(tmp_path / "sr.nii.gz").get_fdata(), nib.load(train_volume).get_fdata()
    assert abs(np.percentile(sr, 99) - np.percentile(hr, 99)) < 0.1 * np.percentile(hr, 99)
    side = json.loads((tmp_path / "sr.json").read_text())
    assert side["Model"] == "m.safetensors" and len(side["ModelSha256"]) == 64


def _meta(path):
    with safe_open(str(path), framework="np") as fh:
        return fh.metadata()["mrsr"]


def test_multiscale_sampler_covers_factors():
    cfg = TrainConfig(inputs=[], output="x", scales=[[2, 2, 2], [2, 2, 3], [1, 1, 4]], scale_range=[1.5, 4], unit_fraction=0.1)
    sampler = PatchSampler([], cfg)
    rng = np.random.default_rng(0)
    draws = [tuple(sampler.factor(rng)) for _ in range(3000)]
    listed = {d for d in draws if d in {(2, 2, 2), (2, 2, 3), (1, 1, 4)}}
    assert listed == {(2.0, 2.0, 2.0), (2.0, 2.0, 3.0), (1.0, 1.0, 4.0)}
    assert 0.05 < sum(d == (1.0, 1.0, 1.0) for d in draws) / len(draws) < 0.15
    ranged = np.array([d for d in draws if d not in listed and d != (1.0, 1.0, 1.0)])
    assert ranged.min() >= 1.5 and ranged.max() <= 4 and len(ranged) > 1000
    assert (np.ptp(ranged, axis=1) > 0.5).mean() > 0.5  # mostly anisotropic, non-integer


def test_sampler_patches_shapes(train_volume):
    from mrsr_cli.training.volumes import load_training_volume

    cfg = TrainConfig(inputs=[], output="x", patch=10, batch=3, scales=[[2, 2, 3]])
    x, y = PatchSampler([load_training_volume(train_volume)], cfg).batch(np.random.default_rng(0))
    assert x.shape == (3, 4, 10, 10, 10) and y.shape == (3, 1, 10, 10, 10)  # ILR + 3 factor channels
    assert 0 < np.abs(x[:, :1] - y).mean() < 0.2 * np.abs(y).mean()  # blurred, not unrelated
    blind = TrainConfig(inputs=[], output="x", patch=10, batch=3, scales=[[2, 2, 3]], factor_input=False)
    assert PatchSampler([load_training_volume(train_volume)], blind).batch(np.random.default_rng(0))[0].shape == (3, 1, 10, 10, 10)


def test_factor_channels_follow_the_permuted_axes(tmp_path):
    """Each patch's factor maps name the axis that was actually blurred, after axis permutation."""
    from mrsr_cli.training.volumes import load_training_volume

    noise = save_nifti(tmp_path / "noise.nii.gz", np.random.default_rng(1).uniform(50, 150, (48, 48, 48)), make_affine())
    cfg = TrainConfig(inputs=[], output="x", patch=16, batch=12, scales=[[1, 1, 4]], augment=["flip", "permute"])
    x, y = PatchSampler([load_training_volume(noise)], cfg).batch(np.random.default_rng(3))
    blurred_axes = set()
    for ilr, maps in zip(x[:, 0], x[:, 1:4]):
        levels = [float(np.unique(m)[0]) for m in maps]
        assert sorted(levels) == [0.0, 0.0, 2.0] and all(np.unique(m).size == 1 for m in maps)
        roughness = [np.mean(np.diff(ilr, axis=a) ** 2) for a in range(3)]
        assert int(np.argmin(roughness)) == levels.index(2.0)  # smoothest along the ×4 axis
        blurred_axes.add(levels.index(2.0))
    assert blurred_axes == {0, 1, 2}


def test_voxel_size_channels_follow_the_permuted_axes(tmp_path):
    """The voxel-size maps give log2 of each patch's HR voxel (mm) along the patch's own axes: on a
    1×1×2 mm volume blurred ×4 along its thick axis, the 2 mm axis and the ×4 axis stay one axis
    through the permutation; with --voxel-size-range the values follow the drawn voxel sizes."""
    from mrsr_cli.training.volumes import load_training_volume

    noise = save_nifti(tmp_path / "noise.nii.gz", np.random.default_rng(1).uniform(50, 150, (48, 48, 40)),
                       make_affine(voxel=(1.0, 1.0, 2.0)))
    cfg = TrainConfig(inputs=[], output="x", patch=12, batch=12, scales=[[1, 1, 4]], augment=["flip", "permute"],
                      voxel_size_input=True)
    assert cfg.in_channels == 7 and cfg.model_params()["voxel_channels"] == 3
    x, _ = PatchSampler([load_training_volume(noise)], cfg).batch(np.random.default_rng(3))
    thick_axes = set()
    for factor_maps, voxel_maps in zip(x[:, 1:4], x[:, 4:7]):
        factors = [float(np.unique(m)[0]) for m in factor_maps]
        voxels = [float(np.unique(m)[0]) for m in voxel_maps]
        assert sorted(voxels) == [0.0, 0.0, 1.0] and all(np.unique(m).size == 1 for m in voxel_maps)
        assert voxels.index(1.0) == factors.index(2.0)
        thick_axes.add(voxels.index(1.0))
    assert thick_axes == {0, 1, 2}
    ranged = TrainConfig(inputs=[], output="x", patch=12, batch=8, scales=[[2, 2, 2]], augment=[], voxel_size_input=True,
                         voxel_size_range=[0.5, 1.5])
    x, _ = PatchSampler([load_training_volume(noise)], ranged).batch(np.random.default_rng(5))
    levels = x[:, 4:7, 0, 0, 0]
    assert (levels >= -1 - 1e-6).all() and (levels <= np.log2(1.5) + 1e-6).all() and np.ptp(levels) > 0.2


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_voxel_size_input_training_and_init(tmp_path, train_volume):
    plain = _train(tmp_path, train_volume, "p.safetensors", "--epochs", "1")
    assert plain.returncode == 0, plain.stderr
    proc = _train(tmp_path, train_volume, "v.safetensors", "--epochs", "1", "--voxel-size-input",
                  "--voxel-size-range", "0.8:1.2", "--init-from", tmp_path / "p.safetensors")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(_meta(tmp_path / "v.safetensors"))
    assert meta["params"]["voxel_channels"] == 3 and meta["params"]["in_channels"] == 7
    assert meta["training"]["voxel_size_input"] is True
    run_cli("simulate", train_volume, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / "sr.nii.gz", "--model", tmp_path / "v.safetensors", "--like", train_volume, check=0)
    assert nib.load(tmp_path / "sr.nii.gz").shape == (36, 36, 36)
    # a model that reads the voxel size cannot be fine-tuned without it
    proc = _train(tmp_path, train_volume, "w.safetensors", "--epochs", "1", "--init-from", tmp_path / "v.safetensors")
    assert proc.returncode == 2 and "--voxel-size-input" in proc.stderr and not (tmp_path / "w.safetensors").exists()


def test_train_usage_errors(tmp_path, train_volume):
    proc = run_cli("train", train_volume, "-o", tmp_path / "m.pt")
    assert proc.returncode == 2 and "safetensors" in proc.stderr
    proc = run_cli("train", train_volume, "-o", tmp_path / "m.safetensors", "--scale-range", "4:2")
    assert proc.returncode == 2 and "--scale-range" in proc.stderr
    proc = run_cli("train", train_volume, "-o", tmp_path / "m.safetensors", "--resume", tmp_path / "none.safetensors")
    assert proc.returncode == 1 and "checkpoint not found" in proc.stderr


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_guided_training_and_channel_mismatch(tmp_path, train_volume):
    run_cli("train", train_volume, "-o", tmp_path / "g.safetensors", "--layers", "3", "--filters", "4", "--patch", "12",
            "--batch", "2", "--patches-per-epoch", "8", "--epochs", "1", "--synthetic-reference", "--precision", "fp32", check=0)
    meta = json.loads(_meta(tmp_path / "g.safetensors"))
    assert meta["params"]["in_channels"] == 5 and meta["params"]["factor_channels"] == 3 and meta["references"]
    run_cli("train", train_volume, "-o", tmp_path / "p.safetensors", "--layers", "3", "--filters", "4", "--patch", "12",
            "--batch", "2", "--patches-per-epoch", "8", "--epochs", "1", "--precision", "fp32", check=0)
    run_cli("simulate", train_volume, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    lr = tmp_path / "lr.nii.gz"
    proc = run_cli("upscale", lr, tmp_path / "g.nii.gz", "--factor", "2", "--model", tmp_path / "g.safetensors", "--reference", train_volume, check=0)
    assert "matches the input poorly" not in proc.stderr
    noise = save_nifti(tmp_path / "noise.nii.gz", np.random.default_rng(0).uniform(0, 100, (36, 36, 36)), make_affine())
    proc = run_cli("upscale", lr, tmp_path / "n.nii.gz", "--factor", "2", "--model", tmp_path / "g.safetensors", "--reference", noise, check=0)
    assert "matches the input poorly" in proc.stderr
    assert json.loads((tmp_path / "n.json").read_text())["ReferenceNMI"] < 1.15
    proc = run_cli("upscale", lr, tmp_path / "x.nii.gz", "--factor", "2", "--model", tmp_path / "g.safetensors")
    assert proc.returncode == 2 and "is guided" in proc.stderr and "reference image" in proc.stderr
    proc = run_cli("upscale", lr, tmp_path / "y.nii.gz", "--factor", "2", "--model", tmp_path / "p.safetensors", "--reference", train_volume,
                   "--guidance", "network")  # an unguided model asked to read the reference (auto would transfer it)
    assert proc.returncode == 2 and "takes no reference" in proc.stderr
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "y.nii.gz").exists()


def test_added_reference_channel_starts_as_the_old_model():
    import torch

    from mrsr_cli.models import ReCNN
    from mrsr_cli.training.surgery import add_input_channels

    torch.manual_seed(0)
    net = ReCNN(layers=3, filters=4).eval()
    guided = add_input_channels(net, "recnn", net.params, 2).eval()
    x = torch.rand(1, 1, 9, 9, 9)
    ref = torch.rand(1, 1, 9, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(guided(torch.cat([x, ref], 1)), net(x))
    assert guided.in_channels == 2
    # factor channels go in at 1, before the reference: a trained guided model keeps its output
    with torch.no_grad():
        guided.convs[0].weight[:, 1].normal_(0, 0.5)
        before = guided(torch.cat([x, ref], 1))
    factor = torch.full((1, 3, 9, 9, 9), 1.0)
    aware = add_input_channels(guided, "recnn", {**guided.params, "factor_channels": 3}, 5, insert_at=1).eval()
    with torch.no_grad():
        torch.testing.assert_close(aware(torch.cat([x, factor, ref], 1)), before)
    assert aware.params["factor_channels"] == 3 and aware.in_channels == 5
    # voxel-size channels go in after the factor maps, before the reference: the output is kept again
    voxel = torch.full((1, 3, 9, 9, 9), -1.0)
    scaled = add_input_channels(aware, "recnn", {**aware.params, "voxel_channels": 3}, 8, insert_at=4).eval()
    with torch.no_grad():
        torch.testing.assert_close(scaled(torch.cat([x, factor, voxel, ref], 1)), before)
    assert scaled.params["voxel_channels"] == 3 and scaled.in_channels == 8


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_saves_checkpoint(tmp_path, train_volume, sig):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "mrsr_cli.app.cli", "train", str(train_volume), "-o", str(out), "--layers", "3",
                             "--filters", "4", "--patch", "12", "--batch", "2", "--patches-per-epoch", "1000", "--epochs", "50",
                             "--precision", "fp32", "--threads", "1"], stderr=subprocess.PIPE, text=True,
                            # a shell's background job inherits SIGINT ignored, and Python keeps it so: restore it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = tmp_path / "m.log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().strip()):
        time.sleep(0.2)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    ckpt = tmp_path / "m.ckpt.safetensors"
    assert ckpt.exists() and not out.exists()
    with safe_open(str(ckpt), framework="np") as fh:
        assert json.loads(fh.metadata()["mrsr-checkpoint"])["iteration"] >= 10


def test_psnr_loss_is_minus_the_gain_over_the_input_in_db():
    import torch

    from mrsr_cli.training.losses import LOSSES, PSNR_LOSS_EPS, parse_loss

    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 8, 8, 8, generator=g)
    ilr = target + 0.1 * torch.randn(2, 1, 8, 8, 8, generator=g)
    pred = target + 0.05 * (ilr - target)  # error 400x smaller in MSE, but ε = 1e-4 caps it near -19 dB
    per_patch = [10 * np.log10((float(((p - t) ** 2).mean()) + PSNR_LOSS_EPS) / (float(((i - t) ** 2).mean()) + PSNR_LOSS_EPS))
                 for p, t, i in zip(pred, target, ilr)]
    assert float(LOSSES["psnr"](pred, target, ilr, {})) == pytest.approx(np.mean(per_patch), rel=1e-5)
    assert -20 < np.mean(per_patch) < -18
    mse = float(((pred - target) ** 2).mean())
    assert float(LOSSES["mse"](pred, target, ilr, {})) == pytest.approx(mse, rel=1e-6)
    # an expression is the weighted sum of its terms, each reported on its own
    total, parts = parse_loss("psnr+0.5*mse+-2*l1")(pred, target, ilr, {})
    l1 = float((pred - target).abs().mean())
    assert float(total) == pytest.approx(np.mean(per_patch) + 0.5 * mse - 2 * l1, rel=1e-5)
    assert set(parts) == {"psnr", "mse", "l1"} and float(parts["l1"]) == pytest.approx(l1, rel=1e-6)


@pytest.mark.parametrize("text, message", [("psnr+lowrankk", "unknown loss term 'lowrankk'"), ("2**mse", "cannot read"),
                                           ("mse+mse", "twice"), ("", "cannot read")])
def test_bad_loss_expressions_are_usage_errors(text, message):
    from mrsr_cli.errors import UsageError
    from mrsr_cli.training.losses import parse_loss

    with pytest.raises(UsageError, match=message):
        parse_loss(text)


def test_affine_warp_moves_anatomy_and_its_reference_together():
    from mrsr_cli.training.volumes import TrainingVolume
    from mrsr_cli.training.augment import warp_volume

    data = phantom((40, 44, 36), seed=2).astype(np.float32)
    data /= data.max()
    vol = TrainingVolume(data, (1.0, 1.0, 1.0), np.argwhere(data > 0.1), reference=data.copy(), tissue=data[None].copy())
    warped = warp_volume(vol, np.random.default_rng(0))
    assert warped.data.shape == data.shape and np.abs(warped.data - data).mean() > 0.01  # really moved
    np.testing.assert_allclose(warped.reference, warped.data, atol=1e-5)  # same transform for the reference
    np.testing.assert_allclose(warped.tissue[0], np.clip(warped.data, 0, 1), atol=1e-5)
    # scale 0.9-1.1 per axis: the head's volume changes by at most ~1.1^3
    ratio = (warped.data > 0.2).sum() / (data > 0.2).sum()
    assert 0.7 < ratio < 1.4
    assert len(warped.centres) > 0.5 * len(vol.centres)


def test_edge_encoding_is_contrast_agnostic():
    from mrsr_cli.models.channels import encode_reference
    from mrsr_cli.errors import MrsrError

    labels = np.digitize(phantom((32, 32, 32), seed=2), [30.0, 80.0])  # background, "grey", "white"
    t1 = np.array([0.0, 0.6, 1.0], np.float32)[labels]
    other = np.array([0.0, 1.0, 0.2], np.float32)[labels]  # inverted and non-monotone: T2-like
    edges_t1, edges_other = encode_reference(t1, "edges"), encode_reference(other, "edges")
    assert (edges_t1 > 0.1).sum() > 1000 and np.corrcoef(edges_t1.ravel(), edges_other.ravel())[0, 1] > 0.9  # same boundaries
    head = labels > 0
    assert np.corrcoef(t1[head], other[head])[0, 1] < -0.9  # from intensities that disagree
    # flip-equivariant, as the self-ensemble needs; intensity encoding is the identity
    np.testing.assert_allclose(encode_reference(other[::-1], "edges"), edges_other[::-1], atol=1e-6)
    assert encode_reference(other, "intensity") is other
    with pytest.raises(MrsrError, match="unknown reference encoding"):
        encode_reference(other, "gradient")


def test_edge_guided_model_reads_the_edges_of_its_reference(tmp_path, train_volume):
    import torch

    from mrsr_cli.models.channels import ArrayField, encode_reference, network_inputs, normalization_scale

    from mrsr_cli.infer.engine import super_resolve
    from mrsr_cli.methods.reference import prepare_reference
    from mrsr_cli.models.prepared import prepare_model

    from mrsr_cli.infer.tiling import EngineOptions, run_self_ensemble
    from mrsr_cli.data.geometry import Grid
    from mrsr_cli.data.interpolate import make_resampler
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.models.store import load_model

    _train(tmp_path, train_volume, "e.safetensors", "--epochs", "1", "--synthetic-reference", "--reference-encoding", "edges", check=0)
    meta = json.loads(_meta(tmp_path / "e.safetensors"))
    assert meta["params"]["reference_encoding"] == "edges" and meta["training"]["reference_encoding"] == "edges"
    run_cli("simulate", train_volume, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    lr, ref = load_volume(tmp_path / "lr.nii.gz"), load_volume(train_volume)
    target = Grid(ref.data.shape, ref.affine)
    options = EngineOptions(device="cpu", precision="fp32", progress=False, ensemble=1)
    reference = prepare_reference(str(train_volume), lr, target, register=False)[:2]
    out, _ = super_resolve(lr, target, prepare_model(str(tmp_path / "e.safetensors")), reference=reference, options=options)
    net, meta = load_model(tmp_path / "e.safetensors")
    factor = [2.0, 2.0, 2.0]
    image = make_resampler(lr.data / normalization_scale(lr.data), lr.grid, target, order=3)
    ref_n = ref.data / normalization_scale(ref.data)

    def run(reference_channel):
        torch.set_num_threads(1)
        channels = network_inputs(meta["params"], target.shape, image, factor, ArrayField(reference_channel))
        result, _ = run_self_ensemble(net, lambda box: np.stack([c.read(box) for c in channels]), target.shape, options)
        return result * normalization_scale(lr.data)

    np.testing.assert_allclose(out, run(encode_reference(ref_n, "edges")), rtol=1e-4, atol=1e-3)
    assert np.abs(out - run(ref_n)).max() > 1e-2  # raw intensities would give another result
    # a guided model that reads edges cannot be fine-tuned to read intensities (or the other way round)
    proc = _train(tmp_path, train_volume, "i.safetensors", "--epochs", "1", "--synthetic-reference", "--init-from", tmp_path / "e.safetensors")
    assert proc.returncode == 2 and "reads its reference as 'edges'" in proc.stderr


def test_detail_augmentation_adds_fine_structure_that_the_reference_shows(monkeypatch):
    import mrsr_cli.training.sampler as train_mod
    from mrsr_cli.training.volumes import TrainingVolume
    from mrsr_cli.training.augment import fine_detail

    sheets = fine_detail((40, 40, 40), np.random.default_rng(1))
    assert np.array_equal(sheets, fine_detail((40, 40, 40), np.random.default_rng(1)))  # a function of the seed
    assert 0 < np.abs(sheets).max() <= 0.2 and (np.sign(sheets[sheets != 0]) == np.sign(sheets.sum())).all()
    assert (np.abs(sheets) > 0.5 * np.abs(sheets).max()).mean() < 0.3  # thin sheets, not a blanket
    flat = np.full((48, 48, 48), 0.5, np.float32)
    vol = TrainingVolume(flat, (1.0, 1.0, 1.0), np.argwhere(flat > 0)[::97])
    # the synthetic reference is made from the target *after* the sheets are added: with an identity
    # "remapping", the reference equals the target
    monkeypatch.setattr(train_mod, "synthetic_reference", lambda hr, tissue, rng: hr.copy())
    cfg = TrainConfig(inputs=[], output="x.safetensors", patch=12, batch=1, scales=[[2.0, 2.0, 2.0]], augment=["detail"],
                      synthetic_reference=True)
    sampler = PatchSampler([vol], cfg)
    rng = np.random.default_rng(4)
    spreads = []
    for _ in range(6):
        ilr, hr, ref, *_ = sampler.patch(rng)
        np.testing.assert_allclose(ref, hr, atol=1e-6)
        if hr.std() > 0.01:
            spreads.append(ilr.std() / hr.std())
    assert spreads and np.median(spreads) < 0.7  # structure that the ×2 LR image blurs away
    plain = PatchSampler([vol], TrainConfig(inputs=[], output="x.safetensors", patch=12, batch=1, augment=[], synthetic_reference=True))
    assert plain.patch(np.random.default_rng(4))[1].std() < 1e-6  # without the augmentation the flat target stays flat


def test_voxel_size_range_resamples_patches_about_their_centre(tmp_path, train_volume):
    from mrsr_cli.training.volumes import load_training_volume
    from mrsr_cli.training.sampler import resampled_patch

    vol = load_training_volume(train_volume)
    centre = np.array([18, 18, 18])
    fine, _, _ = resampled_patch(vol, centre, 21, (0.5, 0.5, 0.5))
    same, _, _ = resampled_patch(vol, centre, 21, (1.0, 1.0, 1.0))
    # the centre voxel keeps its value (a cubic spline passes through its samples) ...
    assert abs(fine[10, 10, 10] - vol.data[18, 18, 18]) < 1e-4 and abs(same[10, 10, 10] - vol.data[18, 18, 18]) < 1e-4
    np.testing.assert_allclose(same, vol.data[8:29, 8:29, 8:29], atol=1e-4)
    # ... and at 0.5 mm a voxel step is half a source voxel: fine[10 + 2k] == source[18 + k]
    np.testing.assert_allclose(fine[10 + 2 * np.arange(-5, 6), 10, 10], vol.data[18 + np.arange(-5, 6), 18, 18], atol=1e-3)
    cfg = TrainConfig.from_dict({"inputs": [str(train_volume)], "output": str(tmp_path / "m.safetensors"), "patch": 12,
                                 "scales": [[2, 2, 2]], "voxel_size_range": [0.5, 1.5], "augment": []})
    sampler = PatchSampler([vol], cfg)
    sizes = np.array([sampler.voxel_size(np.random.default_rng(i)) for i in range(200)])
    assert sizes.min() >= 0.5 and sizes.max() <= 1.5 and (sizes < 0.8).any() and (sizes > 1.2).any()
    ilr, hr, _, factor, *_ = sampler.patch(np.random.default_rng(1))
    assert ilr.shape == hr.shape == (12, 12, 12) and list(factor) == [2, 2, 2]
    proc = run_cli("train", train_volume, "-o", tmp_path / "x.safetensors", "--voxel-size-range", "0:2")
    assert proc.returncode == 2 and "voxel size range" in proc.stderr


def test_coarsen_only_never_draws_a_target_finer_than_its_volume(tmp_path, train_volume):
    """--coarsen-only raises a drawn voxel size below the volume's own (1 mm here) to it: every
    patch's voxel size is >= 1 mm per axis and the sizes above 1 mm are those drawn (at exactly
    1 mm a patch is the volume's own voxels: the test above); without --voxel-size-range it is
    refused."""
    from mrsr_cli.training.volumes import load_training_volume

    vol = load_training_volume(train_volume)
    base = {"inputs": [str(train_volume)], "output": str(tmp_path / "m.safetensors"), "patch": 12,
            "scales": [[2, 2, 2]], "voxel_size_range": [0.5, 1.5], "augment": []}
    free = PatchSampler([vol], TrainConfig.from_dict(base))
    kept = PatchSampler([vol], TrainConfig.from_dict({**base, "coarsen_only": True}))
    sizes, drawn = [], []
    for i in range(60):
        sizes.append(kept.patch(np.random.default_rng(i))[4])
        drawn.append(free.patch(np.random.default_rng(i))[4])
    sizes, drawn = np.array(sizes), np.array(drawn)
    assert (drawn < 0.9).any() and sizes.min() >= 1.0 - 1e-9
    np.testing.assert_allclose(sizes, np.maximum(drawn, 1.0))
    proc = run_cli("train", train_volume, "-o", tmp_path / "x.safetensors", "--coarsen-only")
    assert proc.returncode == 2 and "--coarsen-only needs --voxel-size-range" in proc.stderr


def test_coarser_resampled_patches_keep_world_positions(tmp_path):
    """A linear ramp survives blur, block mean and spline: every patch voxel holds the ramp's value
    at its own world position, for finer and coarser (block-averaged) voxel sizes."""
    from mrsr_cli.training.volumes import TrainingVolume
    from mrsr_cli.training.sampler import resampled_patch

    shape = (120, 60, 60)
    ramp = np.broadcast_to((np.arange(shape[0], dtype=np.float32) * 0.5)[:, None, None], shape).copy() + 10
    vol = TrainingVolume(ramp, (0.5, 0.5, 0.5), np.argwhere(np.ones(shape, bool)))
    centre = np.array([60, 30, 30])
    for new in (0.4, 1.0, 1.3, 2.5):
        patch, _, _ = resampled_patch(vol, centre, 9, (new, new, new))
        x_mm = 0.5 * centre[0] + (np.arange(9) - 4) * new  # world x of the patch voxels (source origin at 0)
        np.testing.assert_allclose(patch[:, 4, 4], 10 + x_mm, atol=0.01, err_msg=f"{new} mm")  # crop-edge spline effects


def test_psf_augmentation_makes_lr_patches_sharper_and_blurrier(tmp_path, train_volume):
    """With `psf` the LR patch's PSF is drawn (Gaussian or box, FWHM 0.5-1.25 LR voxels): the HR
    patch is the one drawn without it, and its LR version is sometimes sharper, sometimes
    blurrier than simulate's Gaussian of one LR voxel (measured by the ILR's Laplacian energy)."""
    from scipy import ndimage

    from mrsr_cli.training.volumes import load_training_volume

    vol = load_training_volume(train_volume)
    base = {"inputs": [str(train_volume)], "output": str(tmp_path / "m.safetensors"), "patch": 16,
            "scales": [[2, 2, 2]], "augment": []}
    plain = PatchSampler([vol], TrainConfig.from_dict(base))
    varied = PatchSampler([vol], TrainConfig.from_dict({**base, "augment": ["psf"]}))
    ratios = []
    for i in range(40):
        ilr0, hr0, *_ = plain.patch(np.random.default_rng(i))
        ilr1, hr1, *_ = varied.patch(np.random.default_rng(i))
        np.testing.assert_array_equal(hr0, hr1)
        ratios.append(np.std(ndimage.laplace(ilr1)) / np.std(ndimage.laplace(ilr0)))
    ratios = np.array(ratios)
    assert (ratios > 1.05).any() and (ratios < 0.95).any()
