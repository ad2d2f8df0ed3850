"""A k-space input matched to the PSF the default network learned (mrsr_cli.degrade.psf_match) and
the told path that uses it: `--input-psf kspace` with the builtins blurs the input to simulate's
Gaussian for the default network, then puts the input's band back by k-space data consistency."""


import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom
from mrsr_cli.degrade.psf_match import FWHM_TO_SIGMA, match_to_simulate


def _transfer(fwhm_voxels: float, cycles_per_voxel: np.ndarray) -> np.ndarray:
    sigma = fwhm_voxels * FWHM_TO_SIGMA
    return np.exp(-2 * np.pi ** 2 * sigma ** 2 * cycles_per_voxel ** 2)


@pytest.mark.parametrize("fwhm", [(1.0, 1.0, 1.0), (0.0, 0.5, 1.5)])
def test_each_axis_is_blurred_by_the_gaussian_s_exact_transfer(fwhm):
    """An impulse far from the faces: its spectrum after matching is the Gaussian's transfer per axis."""
    impulse = np.zeros((32, 40, 48), np.float32)
    impulse[16, 20, 24] = 1.0
    out = match_to_simulate(impulse, fwhm)
    assert out.dtype == np.float32 and out.shape == impulse.shape
    spectrum = np.abs(np.fft.fftn(out))
    for axis, (n, w) in enumerate(zip(impulse.shape, fwhm)):
        line = np.moveaxis(spectrum, axis, 0)[:, 0, 0]
        expected = _transfer(w, np.abs(np.fft.fftfreq(n)))
        assert np.allclose(line, expected, atol=5e-3), axis  # 4e-3 at the Nyquist bin: the mirrored grid is 8 voxels longer
    assert abs(float(out.sum()) - 1.0) < 1e-4


def test_a_constant_stays_constant_to_the_faces():
    """Mirrored before the DFT: the faces do not wrap round into each other."""
    ramp = np.broadcast_to(np.linspace(0, 100, 24, dtype=np.float32)[:, None, None], (24, 20, 16)).copy()
    out = match_to_simulate(ramp)
    assert np.allclose(out[:, 3:-3, 3:-3], ramp[:, 3:-3, 3:-3], atol=0.6)  # a linear ramp is kept by a symmetric blur
    assert abs(float(out[0].mean()) - float(ramp[0].mean())) < 2.0  # not pulled towards the far face (100)


@pytest.fixture
def kspace_scan():
    return nib.Nifti1Image(phantom((24, 24, 24)), make_affine((2.0, 2.0, 2.0)))


def _seen_by_network(monkeypatch, scan, **options) -> tuple[list, dict]:
    """``mrsr_cli.upscale`` ×2 of ``scan`` (one pass), recording the input each network pass reads."""
    import mrsr_cli
    import mrsr_cli.infer.engine as engine

    seen, real = [], engine.super_resolve

    def spy(volume, *args, **kw):
        seen.append(volume.data.copy())
        return real(volume, *args, **kw)

    monkeypatch.setattr(engine, "super_resolve", spy)
    options = {"ensemble": 1, "safety_net": "off", **options}
    return seen, mrsr_cli.upscale(scan, factor=2, **options).extra["mrsr"]


def test_told_kspace_runs_the_default_network_on_the_matched_input(kspace_scan, monkeypatch):
    import mrsr_cli
    from mrsr_cli.data.geometry import Grid
    from mrsr_cli.degrade.kspace import KSpaceModel

    seen, record = _seen_by_network(monkeypatch, kspace_scan, input_psf="kspace")
    data = kspace_scan.get_fdata(dtype=np.float32)
    assert record["Model"] == "default" and record["InputMatchedToPSF"]["FWHMInputVoxels"] == 1.0
    assert len(seen) == 1 and np.allclose(seen[0], match_to_simulate(data), atol=1e-4)
    assert not np.allclose(seen[0], data, atol=1.0)  # the network read the blurred input, not the scan
    # the consistency puts back the scan's own band, not the blurred one's
    out = mrsr_cli.upscale(kspace_scan, factor=2, input_psf="kspace", ensemble=1, safety_net="off", consistency=8)
    again = KSpaceModel(Grid(out.shape, out.affine), Grid(data.shape, kspace_scan.affine)).forward(
        out.get_fdata(dtype=np.float32))
    assert np.abs(again - data).mean() < 0.5 * np.abs(again - seen[0]).mean()  # 0.43 measured; > 1 if it fitted the blur


def test_a_chosen_model_reads_the_input_as_it_is(kspace_scan, monkeypatch):
    seen, record = _seen_by_network(monkeypatch, kspace_scan, input_psf="kspace", model="psf-aware")
    assert record["Model"] == "psf-aware" and "InputMatchedToPSF" not in record
    assert np.array_equal(seen[0], kspace_scan.get_fdata(dtype=np.float32))


def test_the_safety_net_checks_the_matched_pipeline(kspace_scan, monkeypatch):
    """One scale down, the network reads the coarser image matched too: the same blur applied to it."""
    from mrsr_cli.data.geometry import Grid, scaled_grid
    from mrsr_cli.degrade.simulate import simulate_lowres

    seen, record = _seen_by_network(monkeypatch, kspace_scan, input_psf="kspace", safety_net="auto")
    assert record["SafetyNet"]["CheckedWith"] == {"acquisition": "kspace"} and len(seen) == 2
    data = kspace_scan.get_fdata(dtype=np.float32)
    grid = Grid(data.shape, kspace_scan.affine)
    coarse = simulate_lowres(data, grid, factor=(2, 2, 2), acquisition="kspace")[0]
    assert scaled_grid(grid, (2, 2, 2)).shape == seen[1].shape
    assert np.allclose(seen[1], match_to_simulate(coarse), atol=1e-3 * float(data.max()))
