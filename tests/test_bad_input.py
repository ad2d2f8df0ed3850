"""A battery of bad and odd inputs (issue 34), each through the real entry point in-process: the
exit code, one line on stderr naming the problem, no file left behind, the inputs unchanged.

fetch-model's cases that need a server (a download longer than declared, a cached model
corrupted after its download) are in tests/test_zoo.py.
"""

import json
import struct
import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom, save_nifti, sha
from mrsr_cli.app.cli import run


@pytest.fixture
def mrsr(monkeypatch, capsys):
    """``mrsr(*args) -> (exit code, stdout, stderr)``, through ``mrsr_cli.app.cli.run`` as the console script."""

    def call(*args):
        monkeypatch.setattr(sys, "argv", ["mrsr", *map(str, args)])
        with pytest.raises(SystemExit) as exc:
            run()
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return call


@pytest.fixture
def lr(tmp_path):
    """A 2 mm non-negative head, 20³."""
    return save_nifti(tmp_path / "lr.nii.gz", phantom((20, 20, 20)), make_affine((2, 2, 2)))


def refused(result, code, *words):
    """The call failed with ``code`` and one line of stderr holding each of ``words``."""
    status, _, err = result
    lines = err.strip().splitlines()
    assert status == code, err
    assert len(lines) == 1 and lines[0].startswith("mrsr: error: "), err
    assert "rerun with --debug" not in lines[0], f"a bare exception, not a message naming the problem: {lines[0]}"
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def listing(folder):
    return sorted(p.name for p in folder.rglob("*"))


def _model_file(tmp_path, name="m.safetensors", **meta_changes):
    """A tiny saved ReCNN; ``meta_changes`` rewrite its metadata (``params`` merged) in the file's header."""
    import torch

    from mrsr_cli.models import ReCNN
    from mrsr_cli.models.store import save_model

    torch.manual_seed(0)
    path = save_model(tmp_path / name, ReCNN(layers=2, filters=2),
                      {"name": "m", "architecture": "recnn", "normalization": {"method": "percentile", "percentile": 99.5}})
    if meta_changes:
        rewrite_header(path, lambda header, meta: meta.update(
            {k: ({**meta[k], **v} if k == "params" else v) for k, v in meta_changes.items()}))
    return path


def rewrite_header(path, change):
    """``change(header, metadata)`` applied to a safetensors file's JSON header, in place."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["mrsr"])
    change(header, meta)
    header["__metadata__"]["mrsr"] = json.dumps(meta)
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])


def header_only(path, shape, voxel=1.0):
    """A NIfTI header announcing ``shape`` with no voxel data behind it (a grid for --like)."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    header.set_qform(np.diag([voxel, voxel, voxel, 1.0]), code=1)
    header.set_sform(np.diag([voxel, voxel, voxel, 1.0]), code=1)
    header["vox_offset"] = 352
    path.write_bytes(header.binaryblock + b"\0" * 4)
    return path


# ----------------------------------------------------------------------------- data lost or overwritten
def test_train_never_writes_its_log_or_checkpoint_over_an_input(tmp_path, mrsr):
    a = save_nifti(tmp_path / "a.nii.gz", phantom((24, 24, 24)), make_affine())
    b = save_nifti(tmp_path / "b.nii.gz", phantom((24, 24, 24), seed=1), make_affine())
    before = sha(b)
    for flag in ("--log", "--checkpoint"):
        refused(mrsr("train", a, b, "-o", tmp_path / "m.safetensors", flag, b, "--epochs", "1"), 2, "same file as input", "b.nii.gz")
        assert sha(b) == before and not (tmp_path / "m.safetensors").exists()


def test_upscale_never_writes_over_the_input_s_sidecar(tmp_path, mrsr):
    src = save_nifti(tmp_path / "sub-01_T1w.nii.gz", phantom((12, 12, 12)), make_affine((2, 2, 2)))
    sidecar = tmp_path / "sub-01_T1w.json"
    sidecar.write_text('{"RepetitionTime": 2.3}\n')
    refused(mrsr("upscale", src, tmp_path / "sub-01_T1w.nii", "--factor", "2", "--method", "spline", "--force"), 2,
            "sidecar of input")
    assert sidecar.read_text() == '{"RepetitionTime": 2.3}\n' and not (tmp_path / "sub-01_T1w.nii").exists()


def test_an_existing_sidecar_or_log_is_not_overwritten_without_force(tmp_path, mrsr, lr):
    (tmp_path / "out.json").write_text("mine\n")
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--method", "spline"), 1, "out.json", "--force")
    assert (tmp_path / "out.json").read_text() == "mine\n" and not (tmp_path / "out.nii.gz").exists()
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((24, 24, 24)), make_affine())
    (tmp_path / "m.log.jsonl").write_text("mine\n")
    refused(mrsr("train", hr, "-o", tmp_path / "m.safetensors", "--epochs", "1"), 1, "m.log.jsonl", "--force")
    assert (tmp_path / "m.log.jsonl").read_text() == "mine\n" and not (tmp_path / "m.safetensors").exists()


def test_a_sidecar_that_cannot_be_written_leaves_no_image(tmp_path, mrsr, lr):
    (tmp_path / "out.json").mkdir()
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--method", "spline", "--force"), 1, "directory")
    assert not (tmp_path / "out.nii.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mrsr-")]


def test_a_failure_while_writing_the_set_leaves_none_of_it(tmp_path, monkeypatch, lr):
    """The pair is written as one: a sidecar that fails after the image was written leaves neither."""
    from mrsr_cli.app.verbs import upscale_file
    from mrsr_cli.data import bids

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bids, "write_json", broken)
    with pytest.raises(OSError):
        upscale_file(lr, tmp_path / "out.nii.gz", method="spline", factor=(2, 2, 2))
    assert listing(tmp_path) == ["lr.nii.gz"]


# ----------------------------------------------------------------------------- exit 0 with a wrong result
@pytest.mark.parametrize("grid", [["--voxel-size", "3"], ["--factor", "0.5"], ["--factor", "2,2,0.8"]])
def test_a_coarser_grid_is_refused_by_the_network(tmp_path, mrsr, lr, grid):
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", *grid), 2, "coarser", "--method spline")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_spline_onto_a_coarser_grid_is_anti_aliased_and_in_range(tmp_path, mrsr):
    rng = np.random.default_rng(0)
    data = (rng.random((32, 32, 32)) * 30000).astype(np.float32)  # white noise: all of it aliases without a filter
    src = save_nifti(tmp_path / "noise.nii.gz", data, make_affine((1, 1, 1)))
    code, _, err = mrsr("upscale", src, tmp_path / "down.nii.gz", "--factor", "0.5", "--method", "spline")
    assert code == 0, err
    out = nib.load(tmp_path / "down.nii.gz").get_fdata()
    assert out.shape == (16, 16, 16) and 0 <= out.min() and out.max() <= data.max()
    assert out.std() < 0.5 * data.std()  # averaged over a 2 mm voxel, not picked one voxel in two
    assert json.loads((tmp_path / "down.json").read_text())["AntiAliased"] is True


def test_a_model_with_non_finite_weights_is_refused(tmp_path, mrsr, lr):
    from safetensors.numpy import load_file, save_file

    good = _model_file(tmp_path)
    tensors = load_file(str(good))
    tensors[next(iter(tensors))].flat[0] = np.nan
    with open(good, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        metadata = json.loads(fh.read(n))["__metadata__"]
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata=metadata)
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--model", tmp_path / "nan.safetensors"), 1,
            "non-finite")
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_train_refuses_a_learning_rate_that_is_not_a_positive_finite_number(tmp_path, mrsr, value):
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((24, 24, 24)), make_affine())
    refused(mrsr("train", hr, "-o", tmp_path / "m.safetensors", "--lr", value), 2, "--lr")
    assert listing(tmp_path) == ["hr.nii.gz"]


def test_a_model_whose_weights_turned_non_finite_is_not_written(tmp_path):
    import torch

    from mrsr_cli.errors import MrsrError
    from mrsr_cli.models import ReCNN
    from mrsr_cli.models.store import save_model

    net = ReCNN(layers=2, filters=2)
    with torch.no_grad():
        net.convs[0].weight.fill_(float("inf"))
    with pytest.raises(MrsrError, match="diverged"):
        save_model(tmp_path / "m.safetensors", net, {"name": "m", "architecture": "recnn", "normalization": {}})
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("factor", ["1e-300", "0.01"])
def test_an_absurd_factor_is_refused(tmp_path, mrsr, lr, factor):
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", factor, "--method", "spline"), 2, "absurd")
    refused(mrsr("simulate", lr, tmp_path / "sim.nii.gz", "--factor", factor), 2, "absurd")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_evaluate_json_is_strict_json_for_identical_images(mrsr, lr):
    code, out, err = mrsr("evaluate", lr, lr, "--json")
    assert code == 0, err

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    rows = json.loads(out, parse_constant=no_constants)
    assert rows[0]["psnr"] == "inf" and float(rows[0]["psnr"]) == float("inf")


def test_register_refuses_zero_threads(tmp_path, mrsr, lr):
    refused(mrsr("register", lr, lr, tmp_path / "moved.nii.gz", "--threads", "0"), 2, "--threads")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_negative_values_policy(tmp_path, mrsr):
    """A non-negative input gives a non-negative output (cubic ringing below 0 is clipped and
    counted); an input with negative values keeps them."""
    edge = np.zeros((16, 16, 16), np.float32)
    edge[:, :, 8:] = 1000.0  # a step: a cubic spline overshoots below 0 next to it
    src = save_nifti(tmp_path / "edge.nii.gz", edge, make_affine((2, 2, 2)))
    code, _, err = mrsr("upscale", src, tmp_path / "up.nii.gz", "--factor", "2", "--method", "spline")
    assert code == 0, err
    assert nib.load(tmp_path / "up.nii.gz").get_fdata().min() >= 0
    assert json.loads((tmp_path / "up.json").read_text())["NegativeVoxelsClipped"] > 0
    signed = save_nifti(tmp_path / "signed.nii.gz", edge - 500.0, make_affine((2, 2, 2)))
    code, _, err = mrsr("upscale", signed, tmp_path / "s.nii.gz", "--factor", "2", "--method", "spline")
    assert code == 0, err
    assert nib.load(tmp_path / "s.nii.gz").get_fdata().min() < -500  # the overshoot of a signed image is kept
    assert "NegativeVoxelsClipped" not in json.loads((tmp_path / "s.json").read_text())


# ----------------------------------------------------------------------------- memory refused before it is spent
def test_a_kspace_input_too_large_to_match_is_refused_from_the_header(tmp_path, mrsr):
    """Told kspace, the input is blurred to simulate's PSF first (five input-sized volumes): at a
    factor near 1 that, not the output, is what the memory limit refuses."""
    big = save_nifti(tmp_path / "big.nii.gz", np.zeros((128, 128, 64), np.float32), make_affine((1.0, 1.0, 1.0)))
    args = ("upscale", big, tmp_path / "out.nii.gz", "--voxel-size", "1,1,0.9", "--input-psf", "kspace",
            "--memory-limit", "18M", "-q")  # the output fits (14 MiB), the matching does not (20 MiB)
    refused(mrsr(*args), 1, "input-psf kspace", "input grid", "memory limit")
    assert listing(tmp_path) == ["big.nii.gz"]


@pytest.mark.parametrize("grid", [["--voxel-size", "1e-6"], ["--voxel-size", "0.01"]])
def test_an_output_grid_beyond_memory_is_refused_from_the_header(tmp_path, mrsr, lr, grid):
    for method in ("cnn", "spline"):
        refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", *grid, "--method", method), 1, "MiB", "RAM available")
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", *grid, "--memory-limit", "1G"), 1, "memory limit")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_a_huge_voxel_asked_for_a_1_mm_grid_is_refused(tmp_path, mrsr):
    src = save_nifti(tmp_path / "big.nii.gz", np.ones((2, 2, 2), np.float32), make_affine((1e6, 1e6, 1e6)))
    refused(mrsr("upscale", src, tmp_path / "out.nii.gz", "--voxel-size", "1", "--method", "spline"), 1, "RAM available")


def test_a_header_only_giant_like_grid_is_refused(tmp_path, mrsr, lr):
    giant = header_only(tmp_path / "giant.nii", (3000, 3000, 3000))
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--like", giant, "--method", "spline"), 1, "3000×3000×3000")
    refused(mrsr("register", lr, lr, tmp_path / "moved.nii.gz", "--like", giant), 1, "3000×3000×3000")
    assert listing(tmp_path) == ["giant.nii", "lr.nii.gz"]


def test_an_absurd_psf_width_is_refused(tmp_path, mrsr, lr):
    refused(mrsr("simulate", lr, tmp_path / "sim.nii.gz", "--factor", "2", "--fwhm", "1e9"), 2, "PSF", "--fwhm")
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--input-fwhm", "1e9"), 2, "PSF", "--input-fwhm")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_a_small_model_file_claiming_a_huge_network_is_refused_before_it_is_built(tmp_path, mrsr, lr):
    """20 layers of 4,000 filters would need 31 GB to build: the shapes are compared without memory."""
    huge = _model_file(tmp_path, "huge.safetensors", params={"layers": 20, "filters": 4000})
    assert huge.stat().st_size < 100_000
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--model", huge), 1, "do not match")
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((24, 24, 24)), make_affine())
    refused(mrsr("train", hr, "-o", tmp_path / "m.safetensors", "--init-from", huge, "--epochs", "1"), 1, "do not match")
    assert not (tmp_path / "out.nii.gz").exists() and not (tmp_path / "m.safetensors").exists()


# ----------------------------------------------------------------------------- hangs and unbounded resources
def test_a_tile_too_small_for_its_halo_is_refused(tmp_path, mrsr, lr):
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--tile-size", "1"), 2, "--tile-size")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_a_long_output_name_is_written(tmp_path, mrsr, lr):
    name = "x" * (250 - len(".nii.gz")) + ".nii.gz"  # 250 characters: the temporary name must not add to it
    code, _, err = mrsr("upscale", lr, tmp_path / name, "--factor", "2", "--method", "spline")
    assert code == 0, err
    assert (tmp_path / name).exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".mrsr-")]


# ----------------------------------------------------------------------------- one-line messages
@pytest.mark.parametrize("limit", ["inf", "nan", "1e400"])
def test_a_memory_limit_that_is_not_finite(tmp_path, mrsr, lr, limit):
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--memory-limit", limit), 2, "memory size")


@pytest.mark.parametrize("change,words", [
    (lambda header, meta: meta.update(architecture=["recnn"]), "'architecture' must be a str"),
    (lambda header, meta: meta.update(normalization={"method": "percentile", "percentile": 150}), "percentile"),
    (lambda header, meta: next(v for k, v in header.items() if k != "__metadata__").update(
        data_offsets=[str(o) for o in next(v for k, v in header.items() if k != "__metadata__")["data_offsets"]]),
     "malformed entry"),
    (lambda header, meta: next(v for k, v in header.items() if k != "__metadata__").update(dtype="I64"), "malformed entry"),
], ids=["architecture-a-list", "percentile-out-of-range", "string-offsets", "integer-tensors"])
def test_model_metadata_of_the_wrong_type(tmp_path, mrsr, lr, change, words):
    bad = _model_file(tmp_path, "bad.safetensors")
    rewrite_header(bad, change)
    refused(mrsr("upscale", lr, tmp_path / "out.nii.gz", "--factor", "2", "--model", bad), 1, words)


def test_a_recipe_value_of_the_wrong_type(tmp_path, mrsr):
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((24, 24, 24)), make_affine())
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'inputs = ["{hr}"]\noutput = "{tmp_path / "m.safetensors"}"\nepochs = "3"\n')
    refused(mrsr("train", "--config", recipe), 2, "epochs must be an integer")


def test_a_negative_seed(tmp_path, mrsr, lr):
    refused(mrsr("simulate", lr, tmp_path / "sim.nii.gz", "--factor", "2", "--noise", "0.01", "--seed", "-1"), 2, "--seed")
    assert listing(tmp_path) == ["lr.nii.gz"]


def test_binary_text_inputs(tmp_path, mrsr):
    blob = tmp_path / "blob.tsv"
    blob.write_bytes(bytes(range(256)) * 4)
    refused(mrsr("evaluate", "--manifest", blob), 1, "not text")
    refused(mrsr("fetch-model", "--list", "--index", blob), 1, "not text")


@pytest.mark.parametrize("args,flag", [(["--timeout", "-1"], "--timeout"), (["--retries", "0"], "--retries")])
def test_fetch_model_settings(mrsr, args, flag):
    refused(mrsr("fetch-model", "--list", *args), 2, flag)


def test_register_refuses_constant_and_tiny_images(tmp_path, mrsr, lr):
    flat = save_nifti(tmp_path / "flat.nii.gz", np.zeros((20, 20, 20), np.float32), make_affine((2, 2, 2)))
    refused(mrsr("register", flat, lr, tmp_path / "moved.nii.gz"), 1, "constant")
    thin = save_nifti(tmp_path / "thin.nii.gz", phantom((20, 20, 4))[..., :1], make_affine())  # 20×20×1
    refused(mrsr("register", lr, thin, tmp_path / "moved.nii.gz"), 1, "too small")
    assert not (tmp_path / "moved.nii.gz").exists()


def test_a_symlink_loop(tmp_path, mrsr, lr):
    loop = tmp_path / "loop.nii.gz"
    loop.symlink_to(loop)
    refused(mrsr("upscale", loop, tmp_path / "out.nii.gz", "--factor", "2", "--method", "spline"), 1, "loop.nii.gz")
    refused(mrsr("upscale", lr, loop, "--factor", "2", "--method", "spline", "--force"), 1, "loop.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.parametrize("args,words", [(["upscale"], "Missing argument"), (["upscale", "a", "b", "--bogus"], "--bogus"),
                                        (["upscale", "a", "b", "--order", "x"], "--order"), (["bogus"], "bogus")])
def test_command_line_parse_errors_are_one_line(mrsr, args, words):
    refused(mrsr(*args), 2, words)
