"""The input's PSF from its background noise (mrsr_cli.degrade.noise_colour) and the default
command's use of it (`InputPSFFromImage`): white noise in the air is told a k-space truncation."""

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.degrade.noise_colour import WHITE_LIMIT, background_mask, background_noise

FAST = ("--ensemble", "1", "--safety-net", "off", "-q")
SHAPE = (36, 36, 36)


def _complex_noise(sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return sigma * (rng.standard_normal(SHAPE) + 1j * rng.standard_normal(SHAPE))


def _scan(noise: np.ndarray) -> np.ndarray:
    """A magnitude image: the phantom plus complex noise, as a scanner writes it."""
    return np.abs(phantom(SHAPE) + noise).astype(np.float32)


def test_white_noise_reads_white_and_filtered_noise_does_not():
    white = background_noise(_scan(_complex_noise(3.0)))
    assert white is not None and white.white and max(white.correlation) < WHITE_LIMIT
    assert all(abs(c + 0.05) < 0.04 for c in white.correlation)  # the detrending's bias on white noise
    # the noise entering before a filter (here a Gaussian of 1 voxel), as a scanner's does: coloured
    blurred = _complex_noise(6.0)
    blurred = ndimage.gaussian_filter(blurred.real, 1.0) + 1j * ndimage.gaussian_filter(blurred.imag, 1.0)
    coloured = background_noise(_scan(blurred))
    assert coloured is not None and not coloured.white and min(coloured.correlation) > 2 * WHITE_LIMIT
    assert coloured.record()["White"] is False and white.record()["White"] is True


def test_smooth_structure_in_the_air_is_not_colour():
    """A smooth ramp in the background (a template's haze, a bias) is taken off with the local mean."""
    ramp = np.linspace(0, 6, SHAPE[0], dtype=np.float32)[:, None, None] * np.ones(SHAPE, np.float32)
    colour = background_noise(_scan(_complex_noise(3.0) + ramp))
    assert colour is not None and colour.white


def test_no_noise_or_no_background_tells_nothing():
    assert background_noise(phantom(SHAPE)) is None  # a noiseless image (a template, a simulation)
    full = np.full(SHAPE, 100.0, np.float32) + np.abs(_complex_noise(3.0)).astype(np.float32)
    assert not background_mask(full).any() and background_noise(full) is None  # all head: no air
    assert background_noise(np.zeros(SHAPE, np.float32)) is None


# Each acquisition of the degradation registry, the noise entering before it as a scanner's does
# (complex, in the HR image): does the background say "white" (told kspace)?  A plain or mildly
# windowed truncation and a Gaussian of up to one LR voxel read white (docs/cli.md, --input-psf
# auto); strong windows, wider Gaussians and partial Fourier do not.
FAMILIES = [("kspace", {"window": "none"}, True), ("kspace", {"window": "tukey"}, True),
            ("kspace", {"window": "hann"}, False), ("kspace", {"window": "hamming"}, False),
            ("kspace", {"window": "none", "partial_fourier": 0.625}, False),
            ("psf", {"fwhm_lr_voxels": 0.5}, True), ("psf", {"fwhm_lr_voxels": 1.0}, True),
            ("psf", {"fwhm_lr_voxels": 1.5}, False)]


@pytest.mark.parametrize("acquisition,settings,white", FAMILIES)
def test_each_acquisition_reads_as_the_noise_it_leaves(acquisition, settings, white):
    from mrsr_cli.data.geometry import Grid, resized_grid
    from mrsr_cli.degrade.simulate import ACQUISITIONS

    shape = (64, 64, 64)
    hr_grid = Grid(shape, np.eye(4))
    lr_grid = resized_grid(hr_grid, (2.0, 2.0, 2.0))
    fwhm = (2.0 * settings.get("fwhm_lr_voxels", 1.0),) * 3
    model = ACQUISITIONS[acquisition].model(hr_grid, lr_grid, fwhm, "gaussian", settings.get("window"),
                                            settings.get("partial_fourier", 1.0))
    hr = phantom(shape).astype(np.float64)
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        real, imag = (3.0 * rng.standard_normal(shape) for _ in range(2))
        colour = background_noise(np.abs(model.forward(hr + real) + 1j * model.forward(imag)).astype(np.float32))
        assert (colour is not None and colour.white) is white, (seed, colour)
    noiseless = background_noise(np.abs(model.forward(hr)).astype(np.float32))
    assert noiseless is None or not noiseless.white  # noiseless: never told kspace (partial Fourier's air rings)


def _upscale(lr, out, *extra):
    proc = run_cli("upscale", lr, out, "--factor", "2", *FAST, *extra)
    assert proc.returncode == 0, proc.stderr
    return nib.load(str(out)).get_fdata(dtype=np.float32), json.loads(out.with_name(out.name[:-7] + ".json").read_text())


@pytest.fixture
def white_scan(tmp_path):
    return save_nifti(tmp_path / "scan.nii.gz", _scan(_complex_noise(3.0)), make_affine((2.0, 2.0, 2.0)))


def test_white_noise_is_told_kspace_exactly_as_typing_it(white_scan, tmp_path):
    read, record = _upscale(white_scan, tmp_path / "read.nii.gz")
    typed, typed_record = _upscale(white_scan, tmp_path / "typed.nii.gz", "--input-psf", "kspace")
    assert np.array_equal(read, typed)
    told = record["InputPSFFromImage"]
    assert told["Shape"] == "kspace" and told["Noise"]["White"] and record["Model"] == typed_record["Model"] == "default"
    assert "InputMatchedToPSF" in record
    assert "InputPSFFromImage" not in typed_record


@pytest.mark.parametrize("extra", [("--input-psf", "gaussian"), ("--input-fwhm", "2"), ("--model", "default")])
def test_a_told_psf_or_a_chosen_model_skips_the_noise(white_scan, tmp_path, extra):
    _, record = _upscale(white_scan, tmp_path / "out.nii.gz", *extra)
    assert "InputPSFFromImage" not in record and record["Model"] == ("psf-aware" if "--input-fwhm" in extra else "default")


def test_a_scanner_sidecar_or_mrsr_simulate_s_speaks_first(white_scan, tmp_path):
    for name, sidecar, shape in (("dcm", {"MRAcquisitionType": "2D", "SliceThickness": 2}, "sinc"),
                                 ("sim", {"Operation": "simulate", "acquisition": "psf"}, None)):
        scan = tmp_path / f"{name}.nii.gz"
        scan.write_bytes(white_scan.read_bytes())
        scan.with_name(f"{name}.json").write_text(json.dumps(sidecar))
        _, record = _upscale(scan, tmp_path / f"{name}_out.nii.gz")
        assert "InputPSFFromImage" not in record
        assert record.get("InputPSFFromSidecar", {}).get("Shape") == shape


def test_thick_slices_are_not_read_from_their_noise(tmp_path):
    """A 2-D scan's slices are white across whatever their profile: the noise cannot say it."""
    scan = save_nifti(tmp_path / "slices.nii.gz", _scan(_complex_noise(3.0)), make_affine((1.0, 1.0, 2.0)))
    proc = run_cli("upscale", scan, tmp_path / "out.nii.gz", "--voxel-size", "1", *FAST)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out.json").read_text())
    assert "InputPSFFromImage" not in record and record["Model"] == "default"


def test_the_python_api_reads_simulate_s_record_when_given_it():
    import mrsr_cli

    hr = nib.Nifti1Image(np.pad(phantom((40, 40, 40)), 12), make_affine((1.0, 1.0, 1.0)))
    lr = mrsr_cli.simulate(hr, factor=2, noise=0.03, seed=0)  # noise after the blur: white in the air
    assert lr.extra["mrsr"]["Operation"] == "simulate"
    fast = {"ensemble": 1, "safety_net": "off"}
    heard = mrsr_cli.upscale(lr, factor=2, **fast).extra["mrsr"]
    told = mrsr_cli.upscale(lr, factor=2, sidecar=lr.extra["mrsr"], **fast).extra["mrsr"]
    assert heard["InputPSFFromImage"]["Shape"] == "kspace" and "InputMatchedToPSF" in heard
    assert "InputPSFFromImage" not in told and told["Model"] == "default"
