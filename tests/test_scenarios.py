"""Acquisition scenarios: clinical thick slices, low-field simulation, training from real LR/HR pairs."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from safetensors import safe_open

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.data.geometry import Grid, scaled_grid
from mrsr_cli.degrade.lowfield import LowField
from mrsr_cli.evaluation.metrics import head_mask, psnr
from mrsr_cli.degrade.observation import ObservationModel
from mrsr_cli.training.pairs import prepare_pair, read_pairs
from mrsr_cli.degrade.simulate import simulate_lowres, through_plane_axis
from mrsr_cli.training.sampler import PatchSampler
from mrsr_cli.training.config import TrainConfig
from mrsr_cli.training.volumes import load_training_volume


def _meta(path):
    with safe_open(str(path), framework="np") as fh:
        return json.loads(fh.metadata()["mrsr"])


# ----------------------------------------------------------------------------- thick slices
def test_slice_thickness_sets_the_through_plane_psf_only(tmp_path):
    hr = Grid((30, 30, 36), make_affine(oblique=True))
    x = phantom((30, 30, 36), seed=1)
    default, lr_grid, _ = simulate_lowres(x, hr, factor=(1, 1, 4))
    same, _, info = simulate_lowres(x, hr, factor=(1, 1, 4), slice_thickness=4.0)  # FWHM = spacing: the default
    np.testing.assert_array_equal(same, default)
    assert info["slice_axis"] == 2 and info["slice_spacing_mm"] == pytest.approx(4.0)
    assert info["fwhm_mm"] == pytest.approx([1.0, 1.0, 4.0])
    gap, _, info = simulate_lowres(x, hr, factor=(1, 1, 4), slice_thickness=2.0, slice_profile="box")
    assert info["psf"] == ["gaussian", "gaussian", "box"] and info["fwhm_mm"] == pytest.approx([1.0, 1.0, 2.0])
    # thinner slices (a gap) keep more through-plane detail: the LR slices differ more from each other
    assert np.abs(np.diff(gap, axis=2)).mean() > np.abs(np.diff(default, axis=2)).mean()
    # the in-plane PSF is unchanged: a slice-constant image gives the same slices either way
    flat = np.repeat(x[:, :, :1], 36, axis=2)
    np.testing.assert_allclose(simulate_lowres(flat, hr, factor=(1, 1, 4), slice_thickness=2.0, slice_profile="box")[0],
                               simulate_lowres(flat, hr, factor=(1, 1, 4))[0], atol=1e-4)
    assert lr_grid.shape == (30, 30, 9)


def test_per_axis_profile_keeps_the_exact_adjoint():
    hr = Grid((27, 31, 36), make_affine((0.45, 0.45, 1.0), oblique=True, radiological=True))
    model = ObservationModel(hr, scaled_grid(hr, (1, 1, 3)), (0.45, 0.45, 2.4), ("gaussian", "gaussian", "box"))
    rng = np.random.default_rng(3)
    x = rng.standard_normal(hr.shape).astype(np.float32)
    y = rng.standard_normal(model.lr_grid.shape).astype(np.float32)
    lhs, rhs = float(np.vdot(model.forward(x).astype(np.float64), y)), float(np.vdot(x.astype(np.float64), model.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


def test_through_plane_axis_from_the_header_or_the_thickest_voxel():
    assert through_plane_axis((0.45, 3.0, 0.45)) == 1
    assert through_plane_axis((1.0, 1.0, 1.0), header_axis=0) == 0
    with pytest.raises(UsageError, match="no voxel axis is thicker"):
        through_plane_axis((2.0, 2.0, 2.0))


def test_simulate_thick_slices_cli_writes_header_and_sidecar(tmp_path, head):
    out = tmp_path / "thick.nii.gz"
    run_cli("simulate", head, out, "--voxel-size", "1,1,3", "--slice-thickness", "2", "--slice-profile", "box", check=0)
    img = nib.load(out)
    assert img.header.get_dim_info()[2] == 2  # the slice dimension, for readers of the header
    side = json.loads((tmp_path / "thick.json").read_text())
    assert side["SliceThickness"] == 2.0 and side["slice_spacing_mm"] == 3.0 and side["slice_profile"] == "box"
    from mrsr_cli.data.io import load_volume

    assert load_volume(out).slice_axis == 2


@pytest.mark.parametrize("args, message", [
    (["--factor", "2", "--slice-thickness", "3"], "no voxel axis is thicker"),
    (["--factor", "1,1,3", "--slice-thickness", "0"], "must be > 0"),
    (["--factor", "1,1,3", "--slice-profile", "box"], "needs --slice-thickness"),
    (["--factor", "1,1,3", "--slice-thickness", "2", "--slice-profile", "lorentz"], "--slice-profile must be one of"),
])
def test_simulate_thick_slice_bad_input(tmp_path, head, args, message):
    out = tmp_path / "lr.nii.gz"
    proc = run_cli("simulate", head, out, *args)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_upscale_oblique_clinical_scan_to_half_millimetre_keeps_world_coordinates(tmp_path):
    affine = make_affine((0.45, 0.45, 3.0), oblique=True, radiological=True, origin=(-10.0, 12.0, -30.0))
    lr = save_nifti(tmp_path / "clinical.nii.gz", phantom((40, 44, 8), seed=2), affine)
    out = tmp_path / "sr.nii.gz"
    run_cli("upscale", lr, out, "--voxel-size", "0.5", "--method", "spline", check=0)
    img = nib.load(out)
    assert np.allclose(img.header.get_zooms(), (0.5, 0.5, 0.5))
    assert img.shape == (36, 40, 48)  # round(n × old / new) per axis: 18 mm, 19.8 mm, 24 mm
    # same orientation (the voxel axes keep their world directions) and the same FOV centre in mm
    np.testing.assert_allclose(img.affine[:3, :3] / 0.5, affine[:3, :3] / np.array([0.45, 0.45, 3.0]), atol=1e-6)
    centre_in = affine @ np.r_[(np.array([40, 44, 8]) - 1) / 2, 1]
    centre_out = img.affine @ np.r_[(np.array(img.shape) - 1) / 2, 1]
    np.testing.assert_allclose(centre_out, centre_in, atol=1e-6)
    # a world point keeps its intensity: the LR voxel centre (20, 22, 4) read back from the output grid
    data = img.get_fdata()
    world = affine @ [20, 22, 4, 1]
    idx = np.linalg.solve(img.affine, world)[:3]
    value = ndimage.map_coordinates(data, idx[:, None], order=1)[0]
    assert abs(value - nib.load(lr).get_fdata()[20, 22, 4]) < 0.15 * data.max()


def test_training_with_slice_thickness_changes_only_thick_patches(tmp_path, head):
    vol = load_training_volume(head)

    def patch(thickness, factor):
        cfg = TrainConfig.from_dict({"inputs": [str(head)], "output": str(tmp_path / "m.safetensors"), "patch": 12,
                                     "augment": [], "scales": [factor], "slice_thickness": thickness,
                                     "slice_profile": "box"})
        return PatchSampler([vol], cfg).patch(np.random.default_rng(0))[0]

    assert not np.allclose(patch(1.5, [1, 1, 4]), patch(None, [1, 1, 4]))
    np.testing.assert_array_equal(patch(1.5, [2, 2, 2]), patch(None, [2, 2, 2]))  # no thick axis: the voxel PSF


# ----------------------------------------------------------------------------- low field
def test_low_field_model_numbers():
    same = LowField(3.0, 3.0)
    assert same.noise_fraction() == 0 and all(abs(v - 1) < 1e-12 for v in same.tissue_scale().values())
    lf = LowField(1.5, 3.0, source_snr=40)
    # SNR ∝ B0: 40 → 20, so σ² = 1/20² − 1/40²
    assert abs(lf.noise_fraction() - np.sqrt(1 / 400 - 1 / 1600)) < 1e-12
    scale = lf.tissue_scale()
    assert scale["wm"] == 1.0 and scale["gm"] > 1.0  # shorter T1s at 1.5 T: grey matter closer to white
    assert LowField(0.55, 3.0).tissue_scale()["gm"] > scale["gm"]
    with pytest.raises(UsageError, match="unknown field strength"):
        LowField(0.0)
    with pytest.raises(UsageError, match="only lowers the field"):
        LowField(7.0, 3.0)


def test_simulate_low_field_contrast_and_noise(tmp_path):
    shape = (32, 32, 32)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g * g for g in grids))
    wm = (r < 0.35).astype(np.float32)
    gm = ((r >= 0.35) & (r < 0.6)).astype(np.float32)
    t1 = 100 * wm + 70 * gm
    aff = make_affine()
    paths = [save_nifti(tmp_path / f"{n}.nii.gz", a, aff) for n, a in (("t1", t1), ("gm", gm), ("wm", wm))]
    out = tmp_path / "lf.nii.gz"
    run_cli("simulate", paths[0], out, "--field-strength", "1.5", "--tissue-map", paths[1], "--tissue-map", paths[2],
            "--seed", "0", check=0)
    lf = nib.load(out).get_fdata()
    assert lf.shape == shape  # no factor: the grid is kept
    expected = 70 * LowField(1.5).tissue_scale()["gm"] / 100
    deep_gm = (r > 0.42) & (r < 0.53)
    ratio = np.median(lf[deep_gm]) / np.median(lf[r < 0.25])
    assert abs(ratio - expected) < 0.03, (ratio, expected)
    # the background holds the added Rician noise: mean magnitude = σ √(π/2)
    sigma = LowField(1.5).noise_fraction() * np.percentile(t1[t1 > 0], 99.5)
    assert abs(lf[r > 0.9].mean() / (sigma * np.sqrt(np.pi / 2)) - 1) < 0.05
    side = json.loads((tmp_path / "lf.json").read_text())
    assert side["MagneticFieldStrength"] == 1.5 and side["low_field"]["tissue_maps"] == 2


@pytest.mark.parametrize("args, message", [
    (["--field-strength", "0"], "unknown field strength"),
    (["--field-strength", "7"], "only lowers the field"),
    (["--factor", "2", "--source-snr", "30"], "give a field strength"),
])
def test_simulate_low_field_bad_input(tmp_path, head, args, message):
    out = tmp_path / "lf.nii.gz"
    proc = run_cli("simulate", head, out, *args)
    assert proc.returncode != 0 and message in proc.stderr and not out.exists()


def test_low_field_tissue_map_on_another_grid_is_refused(tmp_path, head):
    other = save_nifti(tmp_path / "gm.nii.gz", np.ones((10, 10, 10)), make_affine())
    proc = run_cli("simulate", head, tmp_path / "lf.nii.gz", "--field-strength", "1.5", "--tissue-map", other,
                   "--tissue-map", other)
    assert proc.returncode == 1 and "not on the grid" in proc.stderr and not (tmp_path / "lf.nii.gz").exists()


def test_train_low_field_degradation_records_it(tmp_path, head):
    out = tmp_path / "lf.safetensors"
    run_cli("train", head, "-o", out, "--degradation", "low-field", "--field-strength", "1.5", "--scales", "1,1,1;2,2,2",
            "--layers", "3", "--filters", "4", "--patch", "12", "--batch", "2", "--patches-per-epoch", "4", "--epochs", "1",
            "--threads", "1", "--precision", "fp32", check=0)
    training = _meta(out)["training"]
    assert training["degradation"] == "low-field" and training["field_strength"] == 1.5
    assert "low field 1.5 T from 3 T" in training["psf"]
    # the input patch carries the added noise even at factor 1
    cfg = TrainConfig.from_dict({"inputs": [str(head)], "output": str(out), "patch": 12, "augment": [],
                                 "scales": [[1, 1, 1]], "degradation": "low-field", "field_strength": 1.5})
    ilr, hr, *_ = PatchSampler([load_training_volume(head)], cfg).patch(np.random.default_rng(0))
    assert 0.5 < np.std(ilr - hr) / LowField(1.5).noise_fraction() < 1.5
    proc = run_cli("train", head, "-o", out, "--degradation", "low-field", "--force")
    assert proc.returncode == 2 and "needs a field strength" in proc.stderr


# ----------------------------------------------------------------------------- pairs
def _unseen_pair(tmp_path, seed, shift=0.5):
    """A pair made by a degradation training never simulates: box PSF, 6 % Rician noise, and the
    LR content shifted by half an HR voxel."""
    hr = phantom((36, 36, 36), seed=seed)
    aff = make_affine()
    moved = ndimage.shift(hr, (shift, -shift / 2, 0), order=3, mode="nearest")
    lr, grid, _ = simulate_lowres(moved, Grid(hr.shape, aff), factor=(2, 2, 2), psf="box", noise=0.06, seed=seed)
    return (save_nifti(tmp_path / f"lr{seed}.nii.gz", lr, grid.affine),
            save_nifti(tmp_path / f"hr{seed}.nii.gz", hr, aff))


@pytest.mark.slow  # seconds to minutes of training or a subprocess fleet: make test-slow
def test_pair_trained_model_beats_simulation_trained_on_an_unseen_degradation(tmp_path):
    pairs = [_unseen_pair(tmp_path, s) for s in (1, 2, 3)]
    test_lr, test_hr = _unseen_pair(tmp_path, 7)
    budget = ["--layers", "4", "--filters", "8", "--patch", "16", "--batch", "4", "--patches-per-epoch", "160",
              "--epochs", "4", "--lr", "2e-3", "--augment", "flip", "--seed", "0", "--threads", "2", "--precision", "fp32"]
    run_cli("train", *[hr for _, hr in pairs], "-o", tmp_path / "sim.safetensors", "--scales", "2,2,2", *budget, check=0)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("lr\thr\n" + "".join(f"{lr.name}\t{hr.name}\n" for lr, hr in pairs[:2]))
    run_cli("train", "--pairs", tsv, "--pairs", f"{pairs[2][0]}:{pairs[2][1]}", "-o", tmp_path / "pair.safetensors",
            "--val-pairs", f"{test_lr}:{test_hr}", *budget, check=0)
    hr = nib.load(test_hr).get_fdata()
    mask = head_mask(hr)
    scores = {}
    for name in ("sim", "pair"):
        run_cli("upscale", test_lr, tmp_path / f"{name}.nii.gz", "--like", test_hr, "--model", tmp_path / f"{name}.safetensors",
                "--ensemble", "1", check=0)
        scores[name] = psnr(hr, nib.load(tmp_path / f"{name}.nii.gz").get_fdata(), mask)
    assert scores["pair"] > scores["sim"] + 0.5, scores
    training = _meta(tmp_path / "pair.safetensors")["training"]
    assert training["trained_on"] == "pairs" and [p["lr"] for p in training["pairs"]] == ["lr1.nii.gz", "lr2.nii.gz", "lr3.nii.gz"]
    assert training["pairs"][0]["factor"] == [2.0, 2.0, 2.0] and training["validation_pairs"] == [["lr7.nii.gz", "hr7.nii.gz"]]
    assert training["best_epoch"] is not None  # validated on the held-out pair
    assert _meta(tmp_path / "sim.safetensors")["training"]["trained_on"] == "simulated"


def test_pair_intensity_match_and_register(tmp_path):
    hr = phantom((36, 36, 36), seed=4)
    aff = make_affine()
    lr, grid, _ = simulate_lowres(hr, Grid(hr.shape, aff), factor=(2, 2, 2))
    lr_path = save_nifti(tmp_path / "lr.nii.gz", 3.0 * lr + 20.0, grid.affine)  # another scanner's units
    hr_path = save_nifti(tmp_path / "hr.nii.gz", hr, aff)
    pair = prepare_pair(lr_path, hr_path)
    assert abs(pair.fit["slope"] - 3.0) < 0.1 and abs(pair.fit["intercept"] - 20.0) < 3.0
    mask = head_mask(pair.hr) & pair.overlap
    assert abs(np.median(pair.ilr[mask] - pair.hr[mask])) < 0.02  # the two in the same (LR's normalised) units
    # a 2 mm misplacement in the LR header: registration brings it back
    moved = grid.affine.copy()
    moved[:3, 3] += (2.0, 0.0, 0.0)
    shifted = save_nifti(tmp_path / "lr_moved.nii.gz", 3.0 * lr + 20.0, moved)
    plain, registered = prepare_pair(shifted, hr_path), prepare_pair(shifted, hr_path, register=True)
    assert psnr(registered.hr, registered.ilr, mask) > psnr(plain.hr, plain.ilr, mask) + 3
    assert np.linalg.norm(registered.fit["registration"]["TranslationMm"]) > 1.0


def test_pairs_tsv_and_bad_pairs(tmp_path, head):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("a.nii.gz\tb.nii.gz\nc.nii.gz\n")
    with pytest.raises(UsageError, match="row 2: needs 2 columns"):
        read_pairs([tsv])
    tsv.write_text("lr\thr\na.nii.gz\tsub/b.nii.gz\n")
    assert read_pairs([tsv]) == [[str(tmp_path / "a.nii.gz"), str(tmp_path / "sub/b.nii.gz")]]
    far = save_nifti(tmp_path / "far.nii.gz", phantom((18, 18, 18)), make_affine((2, 2, 2), origin=(500.0, 0.0, 0.0)))
    with pytest.raises(MrsrError, match="do not overlap in world space"):
        prepare_pair(far, head)
    fine = save_nifti(tmp_path / "fine.nii.gz", phantom((40, 44, 36)), make_affine())
    with pytest.raises(MrsrError, match="not coarser"):
        prepare_pair(fine, head)
    out = tmp_path / "m.safetensors"
    for args, code, message in ((["--pairs", "a.nii.gz"], 2, "must be LR:HR"),
                                ([head, "--pairs", f"{far}:{head}"], 2, "not both"),
                                (["--pairs", f"{far}:{head}"], 1, "do not overlap"),
                                (["--pairs", f"{fine}:{head}", "--augment", "noise"], 2, "augmentation noise")):
        proc = run_cli("train", *args, "-o", out)
        assert proc.returncode == code and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not out.exists()
