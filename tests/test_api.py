"""The Python API (issue 35, item 4): in-memory nibabel images through the same code as the CLI."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

import mrsr_cli
from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.errors import UsageError


@pytest.mark.parametrize("args,options", [
    (["--method", "spline", "--factor", "2,2,3"], {"method": "spline", "factor": (2, 2, 3)}),
    (["--factor", "2", "--ensemble", "1", "--precision", "fp32", "--threads", "1"],
     {"factor": 2, "ensemble": 1, "precision": "fp32", "threads": 1}),
])
def test_upscale_gives_what_the_cli_writes(tmp_path, args, options):
    src = save_nifti(tmp_path / "lr.nii.gz", phantom((16, 18, 14)), make_affine((2, 2, 2), oblique=True, radiological=True))
    run_cli("upscale", src, tmp_path / "cli.nii.gz", *args, check=0)
    written = nib.load(tmp_path / "cli.nii.gz")
    result = mrsr_cli.upscale(nib.load(src), **options)
    assert isinstance(result, nib.Nifti1Image) and result.get_data_dtype() == np.float32
    np.testing.assert_array_equal(np.asarray(result.dataobj), written.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(result.affine, written.affine, atol=1e-6)  # world geometry, not just the shape
    sidecar = json.loads((tmp_path / "cli.json").read_text())
    assert result.extra["mrsr"]["OutputShape"] == sidecar["OutputShape"]


def test_simulate_and_evaluate_give_what_the_cli_gives(tmp_path):
    hr_path = save_nifti(tmp_path / "hr.nii.gz", phantom((24, 24, 24)), make_affine())
    run_cli("simulate", hr_path, tmp_path / "lr.nii.gz", "--factor", "2", "--noise", "0.02", "--seed", "3", check=0)
    lr = mrsr_cli.simulate(nib.load(hr_path), factor=2, noise=0.02, seed=3)
    np.testing.assert_array_equal(np.asarray(lr.dataobj), nib.load(tmp_path / "lr.nii.gz").get_fdata(dtype=np.float32))
    up = mrsr_cli.upscale(lr, like=nib.load(hr_path), method="spline")
    nib.save(up, tmp_path / "up.nii.gz")
    rows = json.loads(run_cli("evaluate", hr_path, tmp_path / "up.nii.gz", "--json", check=0).stdout)
    assert mrsr_cli.evaluate(nib.load(hr_path), up)[0]["psnr"] == pytest.approx(rows[0]["psnr"], abs=1e-6)


def test_the_api_checks_what_the_cli_checks():
    img = nib.Nifti1Image(phantom((12, 12, 12)), make_affine((2, 2, 2)))
    with pytest.raises(UsageError, match="give exactly one"):
        mrsr_cli.upscale(img, factor=2, voxel_size=1)
    with pytest.raises(UsageError, match="coarser"):
        mrsr_cli.upscale(img, factor=0.5)
    with pytest.raises(UsageError, match="--window"):
        mrsr_cli.simulate(img, factor=2, window="hann")
    with pytest.raises(UsageError, match="give exactly one"):
        mrsr_cli.simulate(img)


def test_importing_the_package_stays_light():
    code = "import sys, mrsr_cli; print('torch' in sys.modules, 'nibabel' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False", "False"]
