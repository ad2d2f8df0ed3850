"""The observation model A = D↓ B: forward is what simulate writes, adjoint is its exact transpose."""

import numpy as np
import pytest

from conftest import make_affine
from mrsr_cli.errors import MrsrError
from mrsr_cli.data.geometry import Grid, scaled_grid
from mrsr_cli.degrade.observation import ObservationModel
from mrsr_cli.degrade.simulate import simulate_lowres


@pytest.mark.parametrize("voxel, oblique, factor, fwhm, psf", [
    ((1.0, 1.0, 1.0), False, (2, 2, 2), None, "gaussian"),
    ((1.0, 1.2, 0.9), True, (2, 2, 3), None, "gaussian"),      # oblique, radiological, anisotropic voxels
    ((0.9, 0.9, 1.1), True, (1, 1, 4), (0.9, 0.9, 6.0), "box"),  # thick slices with a wider slice profile
    ((1.0, 1.0, 1.0), True, (1.5, 2.5, 1.7), None, "gaussian"),  # non-integer factors: FOV not divisible
])
def test_adjoint_matches_forward_on_oblique_and_anisotropic_grids(voxel, oblique, factor, fwhm, psf):
    hr = Grid((27, 31, 25), make_affine(voxel, oblique=oblique, radiological=oblique))
    model = ObservationModel(hr, scaled_grid(hr, factor), fwhm, psf)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal(hr.shape).astype(np.float32)
        y = rng.standard_normal(model.lr_grid.shape).astype(np.float32)
        lhs = float(np.vdot(model.forward(x).astype(np.float64), y))
        rhs = float(np.vdot(x.astype(np.float64), model.adjoint(y)))
        assert abs(lhs - rhs) <= 1e-5 * max(abs(lhs), abs(rhs)), (lhs, rhs)
        assert model.adjoint(y).shape == hr.shape


def test_forward_is_what_simulate_writes_and_is_linear():
    hr = Grid((30, 30, 24), make_affine((1.0, 1.0, 1.2), oblique=True))
    x = np.random.default_rng(2).random(hr.shape, dtype=np.float32)
    lr, lr_grid, _ = simulate_lowres(x, hr, factor=(2, 2, 3))
    model = ObservationModel(hr, lr_grid)
    np.testing.assert_array_equal(model.forward(x), lr)
    np.testing.assert_allclose(model.forward(2 * x + 1), 2 * lr + model.forward(np.ones_like(x)), rtol=1e-5, atol=1e-5)
    # world coordinates: the LR voxel centre (0,0,0) is the centre of the first 2x2x3 HR block
    np.testing.assert_allclose(lr_grid.affine @ [0, 0, 0, 1], hr.affine @ [0.5, 0.5, 1.0, 1], atol=1e-9)


def test_rotated_lr_grid_is_refused():
    hr = Grid((16, 16, 16), np.eye(4))
    rotated = Grid((8, 8, 8), make_affine((2, 2, 2), oblique=True))
    with pytest.raises(MrsrError, match="parallel"):
        ObservationModel(hr, rotated)
