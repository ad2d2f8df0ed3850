"""Guidance by transfer (`upscale --guidance transfer`, mrsr_cli.methods.guidance)."""

import json
import logging

import nibabel as nib
import numpy as np
import pytest
from conftest import make_affine, phantom, run_cli, save_nifti

from mrsr_cli.methods.consistency import make_consistent
from mrsr_cli.data.geometry import Grid, scaled_grid
from mrsr_cli.methods.guidance import POOR_FIT, local_linear_fit, parse_guidance, transfer
from mrsr_cli.data.interpolate import resample
from mrsr_cli.data.io import Volume
from mrsr_cli.evaluation.metrics import psnr
from mrsr_cli.degrade.observation import ObservationModel, apply_axis_matrices


def _pair(shape=(40, 44, 36), seed=0):
    """A phantom 'T1' and a 'T2' of the same head: tissue contrast inverted, nonlinearly, background kept dark."""
    t1 = phantom(shape, seed=seed)
    t2 = np.where(t1 > 0, 160.0 - t1 + 0.004 * t1 * t1, 0.0).astype(np.float32)
    return t1, t2


def _spline(volume, grid):
    """A network that adds nothing, for the transfer's check one scale down."""
    return resample(volume.data, volume.grid, grid, order=3)


def _simulated(t2, hr, factor=(3, 3, 3)):
    lr = scaled_grid(hr, factor)
    return Volume(ObservationModel(hr, lr).forward(t2), lr.affine)


def test_local_linear_fit_reads_an_inverted_contrast_and_not_noise():
    rng = np.random.default_rng(0)
    guide = rng.random((14, 14, 14))
    a, b, r2 = local_linear_fit(guide, 5.0 - 2.0 * guide, radius=2)
    np.testing.assert_allclose(a, -2.0, atol=1e-4)
    np.testing.assert_allclose(b, 5.0, atol=1e-4)
    assert r2.min() > 0.999
    _, _, r2 = local_linear_fit(rng.random((14, 14, 14)), guide, radius=2)
    assert r2.mean() < 0.1  # 125 samples per window: chance correlations stay small


def test_upsampling_matrices_interpolate_at_the_hr_voxel_centres():
    hr = Grid((24, 20, 16), make_affine((1.0, 1.2, 0.9), oblique=True))
    model = ObservationModel(hr, scaled_grid(hr, (4, 2, 4)))
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in model.lr_grid.shape], indexing="ij")
    ramp = 1.0 + 2.0 * i - j + 0.5 * k  # linear in the LR voxel index: interpolation is exact inside the LR FOV
    on_hr = apply_axis_matrices(ramp, model.upsampling_matrices(1))
    world = hr.affine @ np.array([5.0, 7.0, 6.0, 1.0])
    lr_index = np.linalg.solve(model.lr_grid.affine, world)[:3]  # the same point in LR voxel coordinates
    assert on_hr[5, 7, 6] == pytest.approx(1.0 + 2.0 * lr_index[0] - lr_index[1] + 0.5 * lr_index[2], abs=1e-4)


def test_transfer_brings_the_reference_detail_and_a_wrong_reference_costs_little(caplog):
    hr = Grid((40, 44, 36), make_affine())
    t1, t2 = _pair()
    y = _simulated(t2, hr)
    smooth = _spline(y, hr)
    mask = t2 > 0
    baseline, _ = make_consistent(smooth, y, hr, "auto")
    guided, info = transfer(smooth, y, t1, hr, upscale=_spline)
    guided, _ = make_consistent(guided, y, hr, "auto")
    assert info["MeanFitR2"] > 0.5
    assert psnr(t2, guided, mask) > psnr(t2, baseline, mask) + 3.0
    noise = np.random.default_rng(1).uniform(0, t1.max(), t1.shape).astype(np.float32)
    for wrong in (noise, t1[::-1].copy()):  # noise, a mirrored (misplaced) reference
        with caplog.at_level(logging.WARNING, logger="mrsr"):
            out, info = transfer(smooth, y, wrong, hr, upscale=_spline)
        out, _ = make_consistent(out, y, hr, "auto")
        assert psnr(t2, out, mask) > psnr(t2, baseline, mask) - 0.5
        if wrong is noise:
            assert info["MeanFitR2"] < POOR_FIT and "explains the input poorly" in caplog.text


def test_transfer_leaves_the_outside_of_the_input_field_of_view_alone():
    hr = Grid((40, 44, 36), make_affine())
    t1, t2 = _pair()
    lr = Grid((10, 11, 9), hr.affine @ np.diag([3.0, 3.0, 3.0, 1.0]))  # covers 30 x 33 x 27 mm of the 40 x 44 x 36
    y = Volume(ObservationModel(hr, lr).forward(t2), lr.affine)
    x = resample(y.data, lr, hr, order=3)  # zeros where the input has no data
    out, _ = transfer(x, y, t1, hr, upscale=_spline)
    outside = x == 0
    outside[:30, :33, :27] = False
    assert outside.any() and np.array_equal(out[outside], x[outside])


def test_parse_guidance():
    assert parse_guidance(None) == "auto" and parse_guidance("transfer") == "transfer"
    from mrsr_cli.errors import UsageError

    with pytest.raises(UsageError, match="--guidance"):
        parse_guidance("edges")


def test_upscale_guidance_transfer_cli(tmp_path):
    t1, t2 = _pair()
    affine = make_affine((1.0, 1.2, 0.9), oblique=True, radiological=True)
    hr_path = save_nifti(tmp_path / "t2.nii.gz", t2, affine)
    t1_path = save_nifti(tmp_path / "t1.nii.gz", t1, affine)
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", hr_path, lr, "--factor", "3", check=0)
    plain, guided = tmp_path / "plain.nii.gz", tmp_path / "guided.nii.gz"
    run_cli("upscale", lr, plain, "--like", hr_path, "--ensemble", "1", check=0)
    run_cli("upscale", lr, guided, "--like", hr_path, "--ensemble", "1", "--reference", t1_path, "--guidance", "transfer",
            check=0)
    img = nib.load(str(guided))
    np.testing.assert_allclose(img.affine, affine, atol=1e-5)  # world geometry: the --like grid's
    sidecar = json.loads((tmp_path / "guided.json").read_text())
    assert sidecar["Model"] == "default"  # an unguided network; the reference went to the transfer
    assert sidecar["Guidance"]["Method"] == "transfer" and sidecar["Guidance"]["MeanFitR2"] > 0.5
    assert "ReferenceNMI" in sidecar["Guidance"] and sidecar["DataConsistency"]["Mode"] == "auto"
    mask = t2 > 0
    assert psnr(t2, img.get_fdata(dtype=np.float32), mask) > psnr(t2, nib.load(str(plain)).get_fdata(dtype=np.float32),
                                                                   mask) + 1.0
    np.testing.assert_array_equal(nib.load(str(t1_path)).get_fdata(), t1)  # the reference is not modified


def test_auto_guidance_transfers_to_unguided_models_and_feeds_guided_ones(tmp_path):
    t1, t2 = _pair()
    hr_path, t1_path = save_nifti(tmp_path / "t2.nii.gz", t2, make_affine()), save_nifti(tmp_path / "t1.nii.gz", t1, make_affine())
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", hr_path, lr, "--factor", "3", check=0)
    for name, extra in (("auto", []), ("default", ["--model", "default"]), ("guided", ["--model", "guided"])):
        run_cli("upscale", lr, tmp_path / f"{name}.nii.gz", "--like", hr_path, "--ensemble", "1", "--reference", t1_path,
                *extra, check=0)
    auto, default, guided = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("auto", "default", "guided"))
    assert auto["Model"] == "default" and auto["Guidance"]["Method"] == "transfer"
    assert default["Guidance"]["Method"] == "transfer"
    assert guided["Model"] == "guided" and "Guidance" not in guided and "ReferenceNMI" in guided  # the network reads it
    np.testing.assert_array_equal(nib.load(str(tmp_path / "auto.nii.gz")).get_fdata(),
                                  nib.load(str(tmp_path / "default.nii.gz")).get_fdata())


@pytest.mark.parametrize("args, words", [
    (["--guidance", "transfer"], "--guidance transfer needs --reference"),
    (["--guidance", "network"], "--guidance network needs --reference"),
    (["--guidance", "bogus", "--reference", "{ref}"], "--guidance must be one of"),
    (["--guidance", "transfer", "--reference", "{ref}", "--model", "guided"], "is guided"),
    (["--guidance", "transfer", "--reference", "{ref}", "--method", "spline"], "does not apply to --method spline"),
])
def test_upscale_guidance_usage_errors(tmp_path, args, words):
    t1, t2 = _pair()
    ref = save_nifti(tmp_path / "t1.nii.gz", t1, make_affine())
    lr = tmp_path / "lr.nii.gz"
    run_cli("simulate", save_nifti(tmp_path / "t2.nii.gz", t2, make_affine()), lr, "--factor", "3", check=0)
    out = tmp_path / "out.nii.gz"
    proc = run_cli("upscale", lr, out, "--factor", "3", *[a.replace("{ref}", str(ref)) for a in args])
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_transfer_skipped_on_a_rotated_target_and_refused_over_the_memory_limit(tmp_path, caplog):
    from mrsr_cli.errors import MrsrError
    from mrsr_cli.methods.cnn import transfer_reference
    from mrsr_cli.methods.guidance import check_transfer_memory

    t1, t2 = _pair()
    oblique = make_affine((1.0, 1.0, 1.0), oblique=True)
    lr = scaled_grid(Grid(t2.shape, oblique), (3, 3, 3))
    y = Volume(np.ones(lr.shape, np.float32), lr.affine)
    rotated = Grid(t2.shape, make_affine())  # axes not parallel to the oblique input's
    ref = save_nifti(tmp_path / "t1.nii.gz", t1, make_affine())
    with caplog.at_level(logging.WARNING, logger="mrsr"):
        out, info = transfer_reference(t2, y, rotated, ref, False, None, "gaussian", network=None)
    assert out is t2 and info["Skipped"].startswith("output axes") and "not parallel" in caplog.text
    check_transfer_memory(rotated, None)  # no limit: nothing to say
    with pytest.raises(MrsrError, match="over the memory limit"):
        check_transfer_memory(rotated, 2**20)
