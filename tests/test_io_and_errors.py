"""NIfTI header correctness and the bad-input contract (one line, non-zero exit, no partial file)."""

import gzip
import json

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom, run_cli, save_nifti, sha


def _header_ok(path, affine, qcode, scode):
    img = nib.load(path)
    h = img.header
    assert h.get_data_dtype() == np.float32
    raw = gzip.open(path).read(352) if str(path).endswith(".gz") else open(path, "rb").read(352)
    slope, inter = np.frombuffer(raw[112:120], dtype="<f4")
    assert (slope, inter) == (1.0, 0.0)
    assert int(h["qform_code"]) == qcode and int(h["sform_code"]) == scode
    assert h.get_xyzt_units()[0] == "mm"
    np.testing.assert_allclose(h.get_qform(), affine, atol=1e-4)
    np.testing.assert_allclose(h.get_sform(), affine, atol=1e-5)


def test_int16_bigendian_input_keeps_codes_and_writes_float32(tmp_path):
    data = (phantom() * 10).astype(">i2")
    aff = make_affine((1, 1, 1), oblique=True)
    img = nib.Nifti1Image(data, aff, header=nib.Nifti1Header(endianness=">"))
    img.header.set_slope_inter(0.5, 3.0)
    img.header.set_qform(aff, code=1)
    img.header.set_sform(aff, code=4)
    src = tmp_path / "be.nii"
    nib.save(img, str(src))
    assert nib.load(src).header.endianness == ">"
    run_cli("upscale", src, tmp_path / "out.nii.gz", "--factor", "2", "--method", "spline", check=0)
    out_aff = nib.load(tmp_path / "out.nii.gz").affine
    _header_ok(tmp_path / "out.nii.gz", out_aff, 1, 4)
    # scaling was applied on read (slope 0.5, inter 3): mean intensity is preserved
    assert abs(nib.load(tmp_path / "out.nii.gz").get_fdata().mean() - nib.load(src).get_fdata().mean()) < 1.0


def test_no_codes_become_scanner(tmp_path):
    src = tmp_path / "nocode.nii.gz"
    nib.save(nib.Nifti1Image(phantom(), None), str(src))  # no affine: qform_code = sform_code = 0
    assert (int(nib.load(src).header["qform_code"]), int(nib.load(src).header["sform_code"])) == (0, 0)
    run_cli("simulate", src, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    lr = nib.load(tmp_path / "lr.nii.gz")
    assert (int(lr.header["qform_code"]), int(lr.header["sform_code"])) == (1, 1)


def test_trailing_singleton_dimension_accepted(tmp_path):
    src = save_nifti(tmp_path / "t.nii.gz", phantom()[..., None], make_affine())
    run_cli("simulate", src, tmp_path / "lr.nii.gz", "--factor", "2", check=0)
    assert nib.load(tmp_path / "lr.nii.gz").shape == (20, 22, 18)


def test_nan_voxels_replaced_with_warning(tmp_path):
    data = phantom()
    data[5, 5, 5] = np.nan
    data[6, 6, 6] = np.inf
    src = save_nifti(tmp_path / "nan.nii.gz", data, make_affine())
    proc = run_cli("upscale", src, tmp_path / "o.nii.gz", "--factor", "2", "--method", "spline", check=0)
    assert "2 NaN/inf voxels replaced by 0" in proc.stderr
    assert np.isfinite(nib.load(tmp_path / "o.nii.gz").get_fdata()).all()


def test_sidecar_written(tmp_path, head):
    run_cli("simulate", head, tmp_path / "lr.nii.gz", "--factor", "2,2,3", "--noise", "0.02", "--seed", "3", check=0)
    meta = json.loads((tmp_path / "lr.json").read_text())
    assert meta["factor"] == [2.0, 2.0, 3.0] and meta["fwhm_mm"] == [2.0, 2.0, 3.0]
    assert meta["seed"] == 3 and meta["psf"] == "gaussian" and meta["Sources"]


def _bad_inputs(tmp_path, head):
    text = tmp_path / "text.nii.gz"
    text.write_text("hello, I am not an image\n")
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(head.read_bytes()[: len(head.read_bytes()) // 2])
    two_d = save_nifti(tmp_path / "2d.nii.gz", np.ones((10, 10)), np.eye(4))
    four_d = save_nifti(tmp_path / "4d.nii.gz", np.ones((10, 10, 10, 3)), np.eye(4))
    zero = tmp_path / "zero.nii"
    img = nib.Nifti1Image(np.ones((10, 10, 10), np.float32), np.eye(4))
    nib.save(img, str(zero))
    raw = bytearray(zero.read_bytes())
    raw[46:48] = np.array([0], "<i2").tobytes()  # dim[3] = 0
    zero.write_bytes(bytes(raw))
    return {
        "missing": (tmp_path / "nope.nii.gz", "not found"),
        "text": (text, "cannot read"),
        "corrupt": (corrupt, "corrupt or truncated"),
        "2d": (two_d, "2-D"),
        "4d": (four_d, "4-D with 3 volumes"),
        "zero": (zero, "empty dimension"),
    }


@pytest.mark.parametrize("case", ["missing", "text", "corrupt", "2d", "4d", "zero"])
def test_bad_input_files(tmp_path, head, case):
    path, message = _bad_inputs(tmp_path, head)[case]
    before = sha(path) if path.exists() else None
    out = tmp_path / "out.nii.gz"
    proc = run_cli("upscale", path, out, "--factor", "2", "--method", "spline")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.nii.gz*"))
    if before:
        assert sha(path) == before


@pytest.mark.parametrize("args,message,code", [
    (["--factor", "0"], "must be > 0", 2),
    (["--factor", "-2"], "must be > 0", 2),
    (["--factor", "40"], "absurd", 2),
    (["--factor", "2,2"], "needs 1 or 3 values", 2),
    (["--factor", "2", "--voxel-size", "1"], "exactly one of", 2),
    ([], "exactly one of", 2),
    (["--factor", "2", "--order", "9"], "--order", 2),
])
def test_bad_options(tmp_path, head, args, message, code):
    out = tmp_path / "out.nii.gz"
    proc = run_cli("upscale", head, out, "--method", "spline", *args)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_output_rules(tmp_path, head):
    before = sha(head)
    proc = run_cli("simulate", head, tmp_path / "missing_dir" / "o.nii.gz", "--factor", "2")
    assert proc.returncode == 1 and "output folder does not exist" in proc.stderr
    proc = run_cli("simulate", head, head, "--factor", "2", "--force")
    assert proc.returncode == 2 and "same file as input" in proc.stderr
    out = tmp_path / "o.nii.gz"
    run_cli("simulate", head, out, "--factor", "2", check=0)
    stamp = sha(out)
    proc = run_cli("simulate", head, out, "--factor", "3")
    assert proc.returncode == 1 and "--force" in proc.stderr and sha(out) == stamp
    run_cli("simulate", head, out, "--factor", "3", "--force", check=0)
    assert nib.load(out).shape == (13, 15, 12)
    assert sha(head) == before


def test_version_and_help_fast():
    proc = run_cli("--version", check=0)
    assert proc.stdout.startswith("mrsr ")
    proc = run_cli("--help", check=0)
    for name in ("simulate", "register", "train", "upscale", "evaluate", "fetch-model"):
        assert name in proc.stdout
    import subprocess
    import sys

    code = "import sys, mrsr_cli.app.cli; sys.argv=['mrsr','--help'];\ntry: mrsr_cli.app.cli.run()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip().endswith("False")


def test_like_grid_is_read_from_the_header_alone(tmp_path, oblique_head):
    from mrsr_cli.errors import MrsrError
    from mrsr_cli.data.io import load_grid, load_volume

    raw = oblique_head.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 3])  # header intact, voxel data truncated
    grid = load_grid(cut)
    assert grid.same_as(load_volume(oblique_head).grid)
    with pytest.raises(MrsrError, match="corrupt or truncated"):
        load_volume(cut)
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", oblique_head, lr, "--factor", "2", check=0)
    run_cli("upscale", lr, tmp_path / "out.nii.gz", "--like", cut, "--method", "spline", check=0)
    assert nib.load(tmp_path / "out.nii.gz").shape == nib.load(oblique_head).shape
