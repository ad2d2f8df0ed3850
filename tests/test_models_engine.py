"""Networks, model files and the tiled inference engine."""

import json
import pickle
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrsr_cli.models.channels import ArrayField

from mrsr_cli.infer.device import parse_bytes

from mrsr_cli.infer.tiling import EngineOptions, choose_core, run_tiled
from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.models import EDSR3D, ReCNN, SRCNN3D, build_model
from mrsr_cli.models.store import load_model, save_model

torch.set_num_threads(1)


def _random_net(kind: str, layers: int, kernel: int, seed: int):
    torch.manual_seed(seed)
    if kind == "srcnn3d":
        net = SRCNN3D()
    elif kind == "edsr3d":  # layers - 1 blocks: 2..3, kernel as given
        net = EDSR3D(blocks=layers - 1, filters=3, kernel=kernel, res_scale=0.5)
    else:
        net = ReCNN(layers=layers, filters=3, kernel=kernel)
    with torch.no_grad():  # non-zero biases make border handling matter
        for conv in net.modules():
            if isinstance(conv, torch.nn.Conv3d):
                conv.bias.uniform_(-0.5, 0.5)
    return net.eval()


def _whole(net, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return net(torch.from_numpy(x)[None, None]).numpy()[0, 0]


def _largest_activation(net, x: np.ndarray) -> float:
    """The largest magnitude any convolution's output reaches in the whole-volume pass: float32
    rounding in a streamed pass is relative to the sums it rounds, which can exceed the output."""
    peaks = [0.0]
    hooks = [m.register_forward_hook(lambda _m, _i, out: peaks.append(float(out.abs().max())))
             for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    try:
        _whole(net, x)
    finally:
        for hook in hooks:
            hook.remove()
    return max(peaks)


def _tiled(net, x, tile, **kw):
    src = ArrayField(x)
    out, info = run_tiled(net, lambda box: src.read(box)[None], x.shape,
                          EngineOptions(device="cpu", precision="fp32", tile_size=tile, progress=False, **kw))
    return out, info


@pytest.mark.parametrize("kind,layers,kernel", [("recnn", 3, 3), ("recnn", 2, 5), ("srcnn3d", 3, 0), ("edsr3d", 3, 3)])
def test_impulse_response_matches_halo(kind, layers, kernel):
    net = _random_net(kind, layers, kernel, 0)
    halo = net.halo
    assert halo == {("recnn", 3): 3, ("recnn", 2): 4, ("srcnn3d", 3): 6, ("edsr3d", 3): 7}[(kind, layers)]
    n = 2 * halo + 9
    base = np.random.default_rng(0).random((n, n, n)).astype(np.float32)
    bumped = base.copy()
    c = n // 2
    bumped[c, c, c] += 5.0
    changed = np.argwhere(np.abs(_whole(net, bumped) - _whole(net, base)) > 1e-6)
    reach = np.abs(changed - c).max(axis=0)
    assert (reach <= halo).all() and reach.max() == halo


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["recnn", "recnn", "srcnn3d", "edsr3d"]),
    layers=st.integers(2, 4),
    kernel=st.sampled_from([1, 3, 5]),
    shape=st.tuples(st.integers(3, 19), st.integers(3, 19), st.integers(3, 19)),
    tile=st.integers(1, 20),
    seed=st.integers(0, 1000),
)
def test_tiled_equals_whole_volume(kind, layers, kernel, shape, tile, seed):
    net = _random_net(kind, layers, kernel, seed)
    x = np.random.default_rng(seed).random(shape).astype(np.float32)
    whole = _whole(net, x)
    tiled, info = _tiled(net, x, tile)
    scale = np.abs(whole).max() + 1e-6
    assert np.abs(tiled - whole).max() <= 1e-5 * scale
    assert info["TileCore"] == tile


def test_simulated_oom_halves_tile_and_completes():
    net = _random_net("recnn", 3, 3, 1)
    x = np.random.default_rng(1).random((30, 26, 22)).astype(np.float32)
    calls = []

    def injector(tile_shape):
        calls.append(tile_shape)
        if max(tile_shape) > 14:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    src = ArrayField(x)
    out, info = run_tiled(net, lambda box: src.read(box)[None], x.shape,
                          EngineOptions(device="cpu", precision="fp32", tile_size=32, progress=False), fault_injector=injector)
    assert info["TileCore"] == 8 and max(calls[-1]) <= 14
    np.testing.assert_allclose(out, _whole(net, x), atol=1e-5)


def test_other_errors_are_not_swallowed():
    net = _random_net("recnn", 2, 3, 1)
    x = np.zeros((10, 10, 10), np.float32)

    def broken(box):
        raise ValueError("boom")

    with pytest.raises(ValueError):
        run_tiled(net, broken, x.shape, EngineOptions(device="cpu", precision="fp32", tile_size=4, progress=False))


def test_choose_core_fits_budget():
    per_voxel = 1000
    core = choose_core((200, 200, 200), 10, per_voxel, 512 << 20)
    assert (core + 20) ** 3 * per_voxel <= 512 << 20 < (core + 28) ** 3 * per_voxel
    assert choose_core((20, 20, 20), 5, 1, 1 << 40) == 20
    # boxes are clipped to the volume: a budget for the whole 128³ volume means one tile
    assert choose_core((128, 128, 128), 20, 100, 128**3 * 100) == 128


def test_windows_cover_once_and_keep_halo():
    from mrsr_cli.infer.tiling import tile_windows

    assert tile_windows(128, 88, 20) == [(0, 128, 0, 128)]  # box spans the axis: no duplicate work
    for n, core, halo in [(100, 16, 5), (37, 8, 3), (9, 4, 6), (50, 49, 0)]:
        wins = tile_windows(n, core, halo)
        covered = np.zeros(n, int)
        for c0, c1, b0, b1 in wins:
            covered[c0:c1] += 1
            assert 0 <= b0 <= c0 < c1 <= b1 <= n
            assert b1 - b0 == min(core + 2 * halo, n)
        assert (covered == 1).all()
    assert parse_bytes("1G") == 1 << 30 and parse_bytes("512M") == 512 << 20
    with pytest.raises(UsageError):
        parse_bytes("lots")


def test_save_load_identical_outputs(tmp_path):
    net = _random_net("recnn", 3, 3, 2)
    path = save_model(tmp_path / "m.safetensors", net, {"name": "t", "architecture": "recnn",
                                                         "normalization": {"method": "percentile", "percentile": 99.5}})
    loaded, meta = load_model(path)
    assert meta["halo"] == 3 and meta["receptive_field"] == 7 and meta["params"]["layers"] == 3
    x = np.random.default_rng(0).random((9, 10, 11)).astype(np.float32)
    np.testing.assert_array_equal(_whole(loaded, x), _whole(net, x))


def test_bad_model_files_refused(tmp_path):
    net = _random_net("recnn", 2, 3, 3)
    good = save_model(tmp_path / "good.safetensors", net, {"name": "t", "architecture": "recnn", "normalization": {}})
    pickled = tmp_path / "pickle.safetensors"
    with open(pickled, "wb") as fh:
        pickle.dump({"w": np.zeros(3)}, fh)
    torch_pickle = tmp_path / "torch.safetensors"
    torch.save(net.state_dict(), torch_pickle)
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    raw = good.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"]["mrsr"] = json.dumps({"format": "mrsr-model", "format_version": 1, "name": "x"})
    body = json.dumps(header).encode()
    bad_meta = tmp_path / "badmeta.safetensors"
    bad_meta.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n :])
    wrong_arch = tmp_path / "arch.safetensors"
    header["__metadata__"]["mrsr"] = json.dumps({"format": "mrsr-model", "format_version": 1, "name": "x",
                                                  "architecture": "recnn", "params": {"layers": 5, "filters": 3},
                                                  "normalization": {}})
    body = json.dumps(header).encode()
    wrong_arch.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n :])
    expected = {pickled: "not a safetensors", torch_pickle: "not a safetensors", truncated: "truncated",
                bad_meta: "lacks architecture", wrong_arch: "do not match"}
    for path, message in expected.items():
        with pytest.raises(MrsrError, match=message):
            load_model(path)


def test_registry_rebuilds_architectures():
    assert build_model("srcnn3d", {"in_channels": 2}).in_channels == 2
    with pytest.raises(ValueError):
        build_model("unet", {})


def test_factor_input_models_get_the_upscaling_factor(tmp_path):
    """A factor-input model gets 3 constant channels (log2 of LR voxel / target voxel per axis;
    a 4-channel network fails without them); the sidecar records the factor."""
    from conftest import make_affine, phantom, run_cli, save_nifti

    torch.manual_seed(0)
    net = build_model("recnn", {"layers": 3, "filters": 4, "in_channels": 4, "factor_channels": 3})
    model = save_model(tmp_path / "f.safetensors", net, {"name": "f", "architecture": "recnn", "normalization": {}})
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((24, 24, 24)), make_affine(oblique=True))
    for factor in ("1,1,4", "2,2,2"):
        lr = tmp_path / f"lr{factor}.nii.gz"
        run_cli("simulate", hr, lr, "--factor", factor, check=0)
        out = tmp_path / f"sr{factor}.nii.gz"
        run_cli("upscale", lr, out, "--like", hr, "--model", model, "--precision", "fp32", check=0)
        assert json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text())["ScaleFactor"] == [float(f) for f in factor.split(",")]


@pytest.mark.parametrize("passes", [1, 2, 4, 8])
def test_self_ensemble_averages_mirrored_passes(passes):
    """Each pass mirrors the input along voxel axes, runs the net and mirrors the output back;
    the result is their mean, on the unmirrored grid, for any tiling."""
    from mrsr_cli.infer.tiling import ENSEMBLE_FLIPS, run_self_ensemble

    net = _random_net("recnn", 3, 3, passes)
    x = np.random.default_rng(passes).random((13, 10, 7)).astype(np.float32)
    src = ArrayField(x)
    out, info = run_self_ensemble(net, lambda box: src.read(box)[None], x.shape,
                                  EngineOptions(device="cpu", precision="fp32", tile_size=4, progress=False, ensemble=passes))
    expected = np.mean([np.flip(_whole(net, np.ascontiguousarray(np.flip(x, axes))), axes) for axes in ENSEMBLE_FLIPS[:passes]], axis=0)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert info["SelfEnsemble"] == passes
    if passes > 1:  # the passes really differ: a random net is not mirror-symmetric
        assert np.abs(out - _whole(net, x)).max() > 1e-3


def test_eight_pass_ensemble_is_mirror_equivariant():
    """Averaging over all 8 mirrorings makes any net exactly equivariant to axis flips."""
    from mrsr_cli.infer.tiling import run_self_ensemble

    net = _random_net("recnn", 2, 3, 7)
    x = np.random.default_rng(7).random((9, 11, 8)).astype(np.float32)
    options = EngineOptions(device="cpu", precision="fp32", tile_size=0, progress=False, ensemble=8)

    def ensemble(volume):
        src = ArrayField(np.ascontiguousarray(volume))
        return run_self_ensemble(net, lambda box: src.read(box)[None], volume.shape, options)[0]

    for axes in [(0,), (1, 2)]:
        np.testing.assert_allclose(ensemble(np.flip(x, axes)), np.flip(ensemble(x), axes), atol=1e-5)


def test_cli_ensemble_option(tmp_path):
    """--ensemble is recorded in the sidecar, keeps the output grid and refuses bad values."""
    import nibabel as nib
    from conftest import make_affine, phantom, run_cli, save_nifti

    torch.manual_seed(0)
    model = save_model(tmp_path / "m.safetensors", _random_net("recnn", 3, 3, 3), {"name": "m", "architecture": "recnn", "normalization": {}})
    src = save_nifti(tmp_path / "lr.nii.gz", phantom((12, 14, 10)), make_affine((2, 2, 2), oblique=True))
    for passes in ("1", "8"):
        out = tmp_path / f"e{passes}.nii.gz"
        run_cli("upscale", src, out, "--factor", "2", "--model", model, "--precision", "fp32", "--ensemble", passes, check=0)
        assert json.loads((tmp_path / f"e{passes}.json").read_text())["SelfEnsemble"] == int(passes)
    one, eight = nib.load(tmp_path / "e1.nii.gz"), nib.load(tmp_path / "e8.nii.gz")
    np.testing.assert_allclose(one.affine, eight.affine)
    assert one.shape == eight.shape == (24, 28, 20)
    for bad in (["--model", model, "--ensemble", "3"], ["--ensemble", "2", "--method", "spline"]):
        proc = run_cli("upscale", src, tmp_path / "bad.nii.gz", "--factor", "2", *bad)
        assert proc.returncode == 2 and "--ensemble" in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "bad.nii.gz").exists()


def test_engine_gives_voxel_size_models_the_output_voxel_size(tmp_path):
    """A hand-set ReCNN whose residual is relu(log2(output voxel x, mm) + 2): upscaling one
    constant 2 mm image to 1 mm and to 0.5 mm adds 2 and 1 (× the intensity scale) inside."""
    import nibabel as nib

    from conftest import make_affine, run_cli, save_nifti

    net = ReCNN(layers=2, filters=1, kernel=3, in_channels=4, voxel_channels=3)
    with torch.no_grad():
        for conv in net.convs:
            conv.weight.zero_()
            conv.bias.zero_()
        net.convs[0].weight[0, 1, 1, 1, 1] = 1.0  # the voxel-size map of array axis 0
        net.convs[0].bias[0] = 2.0
        net.convs[1].weight[0, 0, 1, 1, 1] = 1.0
    model = save_model(tmp_path / "v.safetensors", net, {"name": "v", "architecture": "recnn", "normalization": {}})
    lr = save_nifti(tmp_path / "lr.nii.gz", np.full((12, 12, 12), 100.0, np.float32), make_affine(voxel=(2.0, 2.0, 2.0)))
    for size, added in (("1", 2.0), ("0.5", 1.0)):
        out = tmp_path / f"sr{size}.nii.gz"
        run_cli("upscale", lr, out, "--model", model, "--voxel-size", size, "--ensemble", "1", check=0)
        img = nib.load(out)
        assert np.allclose(img.header.get_zooms()[:3], float(size))
        centre = tuple(n // 2 for n in img.shape)
        assert abs(float(img.get_fdata()[centre]) - 100.0 * (1.0 + added)) < 0.5, size


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["recnn", "recnn", "srcnn3d", "edsr3d"]),
    layers=st.integers(2, 4),
    kernel=st.sampled_from([1, 3, 5]),
    shape=st.tuples(st.integers(1, 19), st.integers(3, 19), st.integers(3, 19)),
    slab=st.integers(1, 20),
    column=st.sampled_from([8, 16, 64]),
    seed=st.integers(0, 1000),
)
def test_streamed_equals_whole_volume(kind, layers, kernel, shape, slab, column, seed):
    """Streaming (rolling buffers along axis 0, columns of the other two) computes the whole-volume pass."""
    from mrsr_cli.infer import tiling

    net = _random_net(kind, layers, kernel, seed)
    x = np.random.default_rng(seed).random(shape).astype(np.float32)
    whole = _whole(net, x)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiling, "_plan_stream", lambda *a, **k: (slab, column))
        streamed, info = _tiled(net, x, None)
    scale = max(np.abs(whole).max(), _largest_activation(net, x)) + 1e-6
    assert np.abs(streamed - whole).max() <= 1e-5 * scale
    assert info["Engine"] == "streamed" and info["SlabPlanes"] == slab


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["recnn", "srcnn3d", "edsr3d"]),
    shape=st.tuples(st.integers(4, 40), st.integers(4, 40), st.integers(4, 40)),
    corner=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    size=st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)),
    tile=st.sampled_from([None, 0, 8]),
    seed=st.integers(0, 1000),
)
def test_background_skipping_is_exact(kind, shape, corner, size, tile, seed):
    """Outside the foreground box grown by the halo the output is the network's response to background,
    read from a small volume: equal to the whole-volume pass, constant channels included."""
    from mrsr_cli.infer.tiling import run_self_ensemble
    from mrsr_cli.models.channels import ConstantField, foreground_box

    net = _random_net(kind, 3, 3, seed)
    if kind == "recnn":  # a factor-like constant channel too
        torch.manual_seed(seed)
        net = ReCNN(layers=3, filters=3, in_channels=2).eval()
    x = np.zeros(shape, np.float32)
    start = [int(c * (n - s)) if s <= n else 0 for c, n, s in zip(corner, shape, size)]
    box = tuple(slice(b, min(b + s, n)) for b, s, n in zip(start, size, shape))
    x[box] = np.random.default_rng(seed).random(x[box].shape) + 0.5
    sources = [ArrayField(x)] + ([ConstantField(shape, 1.5)] if kind == "recnn" else [])

    def read(b):
        return np.stack([src.read(b) for src in sources])

    options = EngineOptions(device="cpu", precision="fp32", tile_size=tile, progress=False, ensemble=2)
    dense, _ = run_self_ensemble(net, read, shape, options)
    skipped, info = run_self_ensemble(net, read, shape, options, foreground=foreground_box(sources, shape))
    scale = np.abs(dense).max() + 1e-6
    assert np.abs(skipped - dense).max() <= 1e-5 * scale
    assert 0.0 <= info["BackgroundSkipped"] < 1.0 or not x.any()


def test_background_skipping_reports_the_skipped_fraction(tmp_path):
    """A small head in a large field of view: most of the network's work is skipped, the output is unchanged,
    and the sidecar says how much was skipped (end to end through ``mrsr upscale``)."""
    import nibabel as nib

    from conftest import run_cli

    lr = np.zeros((48, 48, 48), np.float32)
    lr[21:27, 20:26, 22:28] = np.random.default_rng(0).random((6, 6, 6)) * 100 + 50
    nib.save(nib.Nifti1Image(lr, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "lr.nii.gz")
    for name, extra in [("skip", []), ("whole", ["--tile-size", "0"])]:
        run_cli("upscale", tmp_path / "lr.nii.gz", tmp_path / f"{name}.nii.gz", "--factor", "2", "--consistency", "off",
                "--json", *extra, check=0)
    skip, whole = (np.asarray(nib.load(tmp_path / f"{n}.nii.gz").dataobj) for n in ("skip", "whole"))
    assert np.abs(skip - whole).max() <= 1e-3 * (whole.max() - whole.min())  # BACKGROUND_WEIGHT's bound
    print("max difference / range", np.abs(skip - whole).max() / (whole.max() - whole.min()))
    sidecar = json.loads((tmp_path / "skip.json").read_text())
    assert sidecar["BackgroundSkipped"] > 0.25


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["recnn", "srcnn3d", "edsr3d"]),
    channels=st.integers(1, 4),
    ensemble=st.sampled_from([1, 2, 4]),
    shape=st.tuples(st.integers(3, 17), st.integers(3, 17), st.integers(3, 17)),
    seed=st.integers(0, 1000),
)
def test_streamed_ensemble_with_extra_channels_equals_whole_volume(kind, channels, ensemble, shape, seed):
    """The default (streamed) engine against the whole volume in one call, both through the flip ensemble, with
    extra input channels as the engine builds them: constant maps (factor, voxel size, PSF) and a guidance
    reference (an image of its own)."""
    from mrsr_cli.infer.tiling import run_self_ensemble
    from mrsr_cli.models.channels import ConstantField

    torch.manual_seed(seed)
    net = {"recnn": lambda: ReCNN(layers=3, filters=4, in_channels=channels),
           "srcnn3d": lambda: SRCNN3D(in_channels=channels),
           "edsr3d": lambda: EDSR3D(blocks=2, filters=4, in_channels=channels)}[kind]().eval()
    rng = np.random.default_rng(seed)
    sources = [ArrayField(rng.random(shape).astype(np.float32))]
    sources += [ConstantField(shape, 0.5 + k) for k in range(max(channels - 2, 0))]
    if channels > 1:
        sources.append(ArrayField(rng.random(shape).astype(np.float32)))  # the reference

    def read(box):
        return np.stack([s.read(box) for s in sources])

    results = [run_self_ensemble(net, read, shape, EngineOptions(device="cpu", precision="fp32", tile_size=tile,
                                                                 progress=False, ensemble=ensemble))
               for tile in (0, None)]
    (whole, _), (streamed, info) = results
    assert info["Engine"] == "streamed" and info["SelfEnsemble"] == ensemble
    assert np.abs(streamed - whole).max() <= 1e-5 * (np.abs(whole).max() + 1e-6)
