"""upscale --adapt: the network fine-tuned on the input itself, deterministic with --seed, its
usage errors, and an interrupted run that writes nothing."""

import json
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom, run_cli, save_nifti


@pytest.fixture()
def small_input(tmp_path):
    # larger than a patch with its margins (53 voxels at x2), so that patches differ between seeds
    return save_nifti(tmp_path / "sub-01_T1w.nii.gz", phantom((40, 44, 36)) * 100, make_affine((2.0, 2.0, 2.0)))


def _upscale(small_input, out, *args):
    proc = run_cli("upscale", small_input, out, "--factor", "2", "--ensemble", "1", "--safety-net", "off",
                   "--precision", "fp32", "--threads", "1", *args)
    assert proc.returncode == 0, proc.stderr
    return nib.load(out).get_fdata(), json.loads(out.with_name(out.name.replace(".nii.gz", ".json")).read_text()), proc.stderr


def test_adapt_fine_tunes_deterministically_and_changes_the_output(small_input, tmp_path):
    plain, _, _ = _upscale(small_input, tmp_path / "plain.nii.gz")
    a, record, err = _upscale(small_input, tmp_path / "a.nii.gz", "--adapt", "3", "--seed", "5")
    b, _, _ = _upscale(small_input, tmp_path / "b.nii.gz", "--adapt", "3", "--seed", "5")
    c, _, _ = _upscale(small_input, tmp_path / "c.nii.gz", "--adapt", "3", "--seed", "6")
    np.testing.assert_array_equal(a, b)  # the same seed, the same result
    assert not np.array_equal(a, c) and not np.array_equal(a, plain)
    adapt = record["Adapt"]
    assert adapt["Steps"] == 3 and adapt["Seed"] == 5 and np.isfinite(adapt["LossLastStepDB"])
    assert "adapting default to the input: 3 steps" in err
    assert record["Model"] == "default (adapted)"


def test_the_adapted_network_learns_the_input(small_input):
    """Fine-tuning lowers its own loss on the input's degraded patches (the same batches: seeded)."""
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.methods.adapt import adapt_model
    from mrsr_cli.models.prepared import prepare_model

    volume = load_volume(small_input)
    model = prepare_model(None)
    _, short = adapt_model(model, volume, (2, 2, 2), 1, seed=1)
    _, longer = adapt_model(model, volume, (2, 2, 2), 30, seed=1)
    assert longer["LossLastStepDB"] < short["LossFirstStepDB"]


@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_a_bad_adapt_is_a_usage_error_and_writes_nothing(small_input, tmp_path, value):
    proc = run_cli("upscale", small_input, tmp_path / "o.nii.gz", "--factor", "2", "--adapt", value)
    assert proc.returncode == 2 and "--adapt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "o.json").exists()


def test_an_interrupted_adapt_writes_nothing(small_input, tmp_path):
    out = tmp_path / "o.nii.gz"
    proc = subprocess.Popen([sys.executable, "-m", "mrsr_cli.app.cli", "upscale", str(small_input), str(out), "--factor", "2",
                             "--adapt", "100000", "--threads", "1"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    err = ""
    time.sleep(6)  # into the fine-tuning
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=max(5, deadline - time.time()))
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [small_input.name]


def test_adapt_degrades_each_axis_at_its_own_told_width(small_input):
    """A told width per axis (a 2-D scan's slices with a gap: FWHM 0.5 of their spacing) is applied
    per axis, not averaged: along x the patches are blurred as by the in-plane width, along z as by
    the slice width."""
    from mrsr_cli.data.io import load_volume
    from mrsr_cli.degrade.simulate import lowres_on_hr_grid
    from mrsr_cli.methods.adapt import adapt_model
    from mrsr_cli.models.prepared import prepare_model

    rng = np.random.default_rng(0)
    along = {axis: np.broadcast_to(rng.random(40).reshape([40 if a == axis else 1 for a in range(3)]), (40,) * 3)
             for axis in range(3)}  # varies along one axis only
    per_axis = {axis: lowres_on_hr_grid(along[axis], (1.0,) * 3, (2, 2, 2), fwhm_scale=(1.0, 1.0, 0.5)) for axis in (0, 2)}
    np.testing.assert_allclose(per_axis[0], lowres_on_hr_grid(along[0], (1.0,) * 3, (2, 2, 2), fwhm_scale=1.0), atol=1e-5)
    np.testing.assert_allclose(per_axis[2], lowres_on_hr_grid(along[2], (1.0,) * 3, (2, 2, 2), fwhm_scale=0.5), atol=1e-5)
    assert not np.allclose(per_axis[2], lowres_on_hr_grid(along[2], (1.0,) * 3, (2, 2, 2), fwhm_scale=0.75), atol=1e-3)

    _, record = adapt_model(prepare_model(None), load_volume(small_input), (2, 2, 2), 1, seed=1,
                            acquisition={"psf": "gaussian", "fwhm_scale": (1.0, 1.0, 0.5)})
    assert record["Degradation"] == {"psf": "gaussian", "fwhm_scale": (1.0, 1.0, 0.5)}


def test_an_in_plane_pair_turns_a_degraded_in_plane_axis_onto_the_slice_axis():
    """Thick slices learn from the scan's in-plane axes: an in-plane axis, degraded by the slice
    profile at the slice axis's told width, is turned onto the slice axis; its target is the
    undegraded patch turned the same way."""
    from scipy.ndimage import gaussian_filter1d

    from mrsr_cli.methods.adapt import in_plane_pair

    line = gaussian_filter1d(np.random.default_rng(1).random(48), 2.0).astype(np.float32)  # detail near the slices' Nyquist
    patch = np.ascontiguousarray(np.broadcast_to(line[:, None, None], (48, 20, 24)))  # varies along x only
    told = {"psf": "sinc", "fwhm_scale": (1.0, 1.0, 1.0)}
    degraded, target = in_plane_pair(patch, 0, 2, (1.0, 1.0, 1.0), 4.0, told)
    assert degraded.shape == target.shape == (20, 24, 48)
    np.testing.assert_array_equal(target, np.moveaxis(patch, 0, 2))
    profile = degraded[10, 12]
    assert np.ptp(degraded, axis=(0, 1)).max() < 1e-4 * np.ptp(profile)  # still varies along the slice axis only
    inner = slice(12, 36)  # away from the mirrored ends
    assert np.abs(np.diff(profile[inner])).sum() < 0.8 * np.abs(np.diff(line[inner])).sum()  # blurred by 4 mm slices
    narrower, _ = in_plane_pair(patch, 0, 2, (1.0, 1.0, 1.0), 4.0, {"psf": "sinc", "fwhm_scale": (1.0, 1.0, 0.5)})
    error = {name: np.abs(d[10, 12, inner] - line[inner]).mean() for name, d in (("told", degraded), ("narrower", narrower))}
    assert error["narrower"] < error["told"]  # the slice axis's told width (gap: 0.5), not the in-plane one


def test_adapt_on_thick_slices_learns_from_the_in_plane_axes(tmp_path):
    slices = save_nifti(tmp_path / "sub-01_T2w.nii.gz", phantom((40, 44, 12)) * 100, make_affine((1.0, 1.0, 4.0)))
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.nii.gz"
        proc = run_cli("upscale", slices, out, "--factor", "1,1,4", "--ensemble", "1", "--safety-net", "off",
                       "--precision", "fp32", "--threads", "1", "--adapt", "2", "--seed", "3", "--input-psf", "sinc")
        assert proc.returncode == 0, proc.stderr
        outs.append(nib.load(out).get_fdata())
    np.testing.assert_array_equal(*outs)  # deterministic with --seed
    record = json.loads((tmp_path / "a.json").read_text())["Adapt"]
    assert record["Pairs"] == "in-plane (thick slices)" and record["Degradation"]["psf"] == "sinc"
    assert record["SliceSpacingInPlaneVoxels"] == [4.0, 4.0]
    assert "from its in-plane axes" in proc.stderr


def test_adapt_on_thick_slices_measures_their_spacing_in_output_voxels(tmp_path):
    """1×1×3 mm slices asked for 1×1×0.5 mm: the slice axis is upscaled ×6, and a 3 mm slice spans
    3 output voxels along an in-plane axis, not 6."""
    slices = save_nifti(tmp_path / "sub-01_FLAIR.nii.gz", phantom((40, 44, 12)) * 100, make_affine((1.0, 1.0, 3.0)))
    out = tmp_path / "o.nii.gz"
    proc = run_cli("upscale", slices, out, "--voxel-size", "1,1,0.5", "--ensemble", "1", "--safety-net", "off",
                   "--precision", "fp32", "--threads", "1", "--adapt", "1")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "o.json").read_text())["Adapt"]
    assert record["Pairs"] == "in-plane (thick slices)" and record["SliceSpacingInPlaneVoxels"] == [3.0, 3.0]


def test_adapt_on_thick_slices_refuses_a_grid_its_volumes_do_not_fit(tmp_path):
    """Its working volumes on the output grid are counted before the extra upscale: over the memory
    limit, one line, exit 1, nothing written (upscale's own check, of the method's volumes alone, passed)."""
    # a 100×100×80 output: 3 volumes (the method's, 9.6 MB) fit in 20 MB, 7 (with adapting, 22.4 MB) do not
    slices = save_nifti(tmp_path / "sub-01_T1w.nii.gz", phantom((100, 100, 20)) * 100, make_affine((1.0, 1.0, 4.0)))
    out = tmp_path / "o.nii.gz"
    args = ("--factor", "1,1,4", "--ensemble", "1", "--safety-net", "off", "--threads", "1", "--memory-limit", "20M")
    proc = run_cli("upscale", slices, out, *args, "--adapt", "1")
    assert proc.returncode == 1 and "--adapt on thick slices needs about" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [slices.name]


def test_adapt_with_a_guided_network_is_a_usage_error(small_input, tmp_path):
    reference = save_nifti(tmp_path / "ref.nii.gz", phantom((80, 88, 72)) * 100, make_affine((1.0, 1.0, 1.0)))
    out = tmp_path / "o.nii.gz"
    proc = run_cli("upscale", small_input, out, "--factor", "2", "--reference", reference, "--guidance", "network",
                   "--adapt", "1")
    assert proc.returncode == 2 and "--adapt" in proc.stderr and "guided" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_adapt_on_a_kspace_input_warns_what_was_measured(small_input, tmp_path):
    out = tmp_path / "o.nii.gz"
    proc = run_cli("upscale", small_input, out, "--factor", "2", "--ensemble", "1", "--safety-net", "off", "--threads", "1",
                   "--input-psf", "kspace", "--adapt", "1")
    assert proc.returncode == 0 and out.exists(), proc.stderr
    assert "warning: --adapt on a k-space input lowered the gain" in proc.stderr
    record = json.loads((tmp_path / "o.json").read_text())  # adapted on the input matched to simulate's PSF
    assert "InputMatchedToPSF" in record and record["Adapt"]
    quiet = run_cli("upscale", small_input, tmp_path / "g.nii.gz", "--factor", "2", "--ensemble", "1", "--safety-net", "off",
                    "--threads", "1", "--adapt", "1")  # simulate's PSF: no such warning
    assert quiet.returncode == 0 and "k-space input" not in quiet.stderr
