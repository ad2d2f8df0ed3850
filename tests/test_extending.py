"""docs/extending.md, followed to the letter: a toy network, two loss terms (one stateful), a method
and a PSF shape, each written in a temporary module as the guide says, registered where it says,
and run end to end through the library the CLI calls."""

import importlib.util
import json
import textwrap

import numpy as np
import pytest

from conftest import make_affine, phantom, save_nifti

EXTENSION = textwrap.dedent('''
    import numpy as np
    import torch
    from scipy import ndimage
    from torch import nn

    from mrsr_cli.errors import UsageError


    class TinyNet(nn.Module):
        """Two convolutions with a residual skip: the smallest network the trainer accepts."""

        def __init__(self, width=4, in_channels=1, residual=True, init="msra", factor_channels=0,
                     reference_encoding="intensity", voxel_channels=0, psf_channels=0):
            super().__init__()
            self.first = nn.Conv3d(in_channels, width, 3, padding=1)
            self.last = nn.Conv3d(width, 1, 3, padding=1)
            self.residual = residual
            self.params = {"width": width, "in_channels": in_channels, "residual": residual, "init": init,
                           "factor_channels": factor_channels, "reference_encoding": reference_encoding,
                           "voxel_channels": voxel_channels, "psf_channels": psf_channels}

        halo = 2

        @property
        def in_channels(self):
            return self.first.in_channels

        def activation_bytes_per_voxel(self, element_bytes):
            return 3 * self.first.out_channels * element_bytes

        def forward(self, x):
            out = self.last(torch.relu(self.first(x))).float()
            return x[:, :1].float() + out if self.residual else out


    def edge_l1(pred, target, ilr, ctx):
        """L1 of the difference of the x-gradients."""
        return ((pred[..., 1:] - pred[..., :-1]).float() - (target[..., 1:] - target[..., :-1])).abs().mean()


    class ScaledL1(nn.Module):
        def __init__(self, seed=0):
            super().__init__()
            self.weight = nn.Parameter(torch.tensor(1.0))
            self.seen = 0

        def setup(self, volumes, seed):
            self.seen = len(volumes)

        def metadata(self):
            return {"weight": float(self.weight.detach()), "volumes": self.seen}

        def forward(self, pred, target, ilr, ctx):
            return self.weight * (pred.float() - target).abs().mean() + (self.weight - 0.5) ** 2


    class ScaledL1Factory:
        stateful = True
        positive_weight = True

        def __call__(self, seed=0):
            return ScaledL1(seed)


    def blur(volume, target, *, sigma: float = 1.0):
        """Cubic spline, then a Gaussian of sigma voxels."""
        from mrsr_cli.data.interpolate import resample

        if not sigma > 0:
            raise UsageError(f"--sigma must be > 0, got {sigma}")
        out = ndimage.gaussian_filter(resample(volume.data, volume.grid, target, order=3), sigma).astype(np.float32)
        return out, {"BlurSigma": sigma}


    def triangle(a, width_voxels, axis, output):
        """A box of the width convolved with itself: a triangle of the same FWHM."""
        from mrsr_cli.degrade.psf import box_kernel

        half = box_kernel(width_voxels / 2)
        kernel = np.convolve(half, half)
        return ndimage.correlate1d(a, (kernel / kernel.sum()).astype(a.dtype), axis=axis, mode="reflect", output=output)
''')


@pytest.fixture
def extension(tmp_path):
    """The guide's code, in a module of its own."""
    path = tmp_path / "my_extension.py"
    path.write_text(EXTENSION)
    spec = importlib.util.spec_from_file_location("my_extension", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(tmp_path, volume, **kw):
    from mrsr_cli.training.config import TrainConfig

    base = dict(inputs=[str(volume)], output=str(tmp_path / "m.safetensors"), patch=12, batch=2, patches_per_epoch=8,
                epochs=1, precision="fp32", threads=1, seed=1, quiet=True, arch_params={"layers": 3, "filters": 4})
    base.update(kw)
    return TrainConfig(**base).validated()


def test_a_network_written_as_the_guide_says_trains_upscales_and_fine_tunes(tmp_path, monkeypatch, extension):
    from mrsr_cli.app import options as table
    from mrsr_cli.app.verbs import upscale_file
    from mrsr_cli.models import ARCHITECTURES
    from mrsr_cli.training.loop import train

    monkeypatch.setitem(ARCHITECTURES, "tiny", extension.TinyNet)
    assert table.option("train", "arch").choices != tuple(ARCHITECTURES)  # step 3's guard: test_options would say so
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((32, 32, 32), seed=2), make_affine())
    train(_config(tmp_path, hr, arch="tiny", arch_params={"width": 3}))
    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((16, 16, 16), seed=3), make_affine((2, 2, 2)))
    info = upscale_file(lr, tmp_path / "sr.nii.gz", factor=(2, 2, 2), model=str(tmp_path / "m.safetensors"), consistency="off")
    assert info["ModelArchitecture"] == "tiny" and (tmp_path / "sr.nii.gz").exists()
    # --init-from finds the input layer and adds the voxel-size channels there
    train(_config(tmp_path, hr, arch="tiny", arch_params={"width": 3}, output=str(tmp_path / "v.safetensors"), voxel_size_input=True,
                  init_from=str(tmp_path / "m.safetensors")))
    from mrsr_cli.models.store import load_model

    net, meta = load_model(tmp_path / "v.safetensors")
    assert meta["params"]["in_channels"] == 7 and net.first.in_channels == 7


def test_loss_terms_written_as_the_guide_says_train_and_are_recorded(tmp_path, monkeypatch, extension):
    from mrsr_cli.training.loop import train
    from mrsr_cli.training.losses import LOSSES

    monkeypatch.setitem(LOSSES, "edge-l1", extension.edge_l1)
    monkeypatch.setitem(LOSSES, "scaled-l1", extension.ScaledL1Factory())
    hr = save_nifti(tmp_path / "hr.nii.gz", phantom((32, 32, 32), seed=2), make_affine())
    train(_config(tmp_path, hr, loss="l1+0.1*edge-l1+scaled-l1", epochs=2))
    curve = [json.loads(line) for line in (tmp_path / "m.log.jsonl").read_text().splitlines()]
    assert set(curve[-1]["loss_terms"]) == {"l1", "edge-l1", "scaled-l1"}
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), framework="np") as fh:
        meta = json.loads(fh.metadata()["mrsr"])
    state = meta["loss_state"]["scaled-l1"]
    assert state["volumes"] == 1  # setup saw the training volumes
    assert state["weight"] != 1.0  # its parameter trained with the network
    assert meta["training"]["loss"] == "l1+0.1*edge-l1+scaled-l1"


def test_a_method_written_as_the_guide_says_runs_with_its_option(tmp_path, monkeypatch, extension):
    from mrsr_cli.app import options as table
    from mrsr_cli.app.verbs import upscale_file
    from mrsr_cli.errors import UsageError
    from mrsr_cli.methods import METHODS

    monkeypatch.setitem(METHODS, "blur", extension.blur)
    lr = save_nifti(tmp_path / "lr.nii.gz", phantom((16, 16, 16), seed=3), make_affine((2, 2, 2)))
    info = upscale_file(lr, tmp_path / "b.nii.gz", method="blur", factor=(2, 2, 2), sigma=0.5)
    assert info["Method"] == "blur" and info["BlurSigma"] == 0.5
    assert json.loads((tmp_path / "b.json").read_text())["BlurSigma"] == 0.5
    with pytest.raises(UsageError, match="--sigma"):
        upscale_file(lr, tmp_path / "c.nii.gz", method="blur", factor=(2, 2, 2), sigma=-1.0)
    with pytest.raises(UsageError, match="does not apply|takes"):
        upscale_file(lr, tmp_path / "d.nii.gz", method="blur", factor=(2, 2, 2), order=3)
    assert not (tmp_path / "c.nii.gz").exists() and not (tmp_path / "d.nii.gz").exists()
    # step 3: one row gives the flag, the Nipype trait and the docs line, and the value reaches the method
    row = table.Option("sigma", "float", "Blur of the output in voxels.", to_method=True)
    rows = table.UPSCALE + [row]
    monkeypatch.setattr(table, "UPSCALE", rows)
    assert "sigma" in table.method_options({"sigma": 0.5, "device": "auto"})
    assert table.input_traits("upscale", rows)["sigma"].argstr == "--sigma %g"
    assert "`--sigma X`" in table.docs_block("upscale", rows)


def test_a_psf_shape_added_to_the_table_reaches_simulate_the_adjoint_and_upscale(tmp_path, monkeypatch, extension):
    from mrsr_cli.data.geometry import Grid, scaled_grid
    from mrsr_cli.degrade.observation import ObservationModel, check_input_psf
    from mrsr_cli.degrade.psf import PSF_SHAPES, PSFShape
    from mrsr_cli.degrade.simulate import simulate_lowres
    from mrsr_cli.models.channels import psf_encoding

    monkeypatch.setitem(PSF_SHAPES, "triangle", PSFShape(extension.triangle, 0.82))
    check_input_psf("triangle")
    hr = Grid((24, 24, 24), np.eye(4))
    x, y = np.random.default_rng(0).random((2, 24, 24, 24), dtype=np.float32)
    model = ObservationModel(hr, scaled_grid(hr, (2, 2, 3)), psf="triangle")
    ax = model.forward(x)
    lhs, rhs = float(np.vdot(ax, y[:12, :12, :8])), float(np.vdot(x, model.adjoint(y[:12, :12, :8])))
    assert abs(lhs - rhs) / abs(lhs) < 1e-5  # the exact adjoint, with no code but the table entry
    lr_triangle, _, _ = simulate_lowres(phantom((24, 24, 24)), hr, factor=(2, 2, 2), psf="triangle")
    lr_box, _, _ = simulate_lowres(phantom((24, 24, 24)), hr, factor=(2, 2, 2), psf="box")
    assert lr_triangle.shape == lr_box.shape and not np.allclose(lr_triangle, lr_box)
    assert psf_encoding((1.0, 1.0, 1.0), ("triangle",) * 3, (2, 2, 2)) == [-0.18] * 3


LAYERS = ["data", "degrade", "evaluation", "models", "infer", "methods", "training", "app"]


def test_imports_only_point_to_the_same_or_a_lower_layer():
    """The layering docs/extending.md states, for every import of the package (function-local ones too)."""
    import ast

    from conftest import ROOT

    upward = []
    for path in (ROOT / "mrsr_cli").rglob("*.py"):
        parts = path.relative_to(ROOT / "mrsr_cli").parts
        if parts[0] not in LAYERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mrsr_cli."):
                target = node.module.split(".")[1]
                if target in LAYERS and LAYERS.index(target) > LAYERS.index(parts[0]):
                    upward.append(f"{'/'.join(parts)} imports {node.module}")
    assert not upward, upward
