"""The engine on a CUDA GPU (run by benchmarks/gpu_check.sh on a lent GPU machine; skipped elsewhere).

cuDNN picks its algorithms per shape, so the GPU's streamed and whole-volume passes agree to
rounding (1e-4 of the output's range in fp32), not bit for bit as on the CPU.
"""

import numpy as np
import pytest
import torch

from mrsr_cli.infer.tiling import EngineOptions, run_self_ensemble, run_tiled
from mrsr_cli.models import EDSR3D, ReCNN
from mrsr_cli.models.channels import ArrayField

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _run(net, x, **options):
    source = ArrayField(x)
    out, info = run_tiled(net, lambda box: source.read(box)[None], x.shape, EngineOptions(progress=False, **options))
    return out, info


@pytest.mark.parametrize("net", [ReCNN(layers=6, filters=16), EDSR3D(blocks=2, filters=8)], ids=["recnn", "edsr3d"])
def test_cuda_streamed_equals_whole_volume_and_cpu(net, monkeypatch):
    from mrsr_cli.infer import tiling

    torch.manual_seed(0)
    x = np.random.default_rng(0).random((37, 29, 41)).astype(np.float32)
    cpu, _ = _run(net.eval(), x, device="cpu", precision="fp32", tile_size=0)
    whole, info_whole = _run(net.eval(), x, device="cuda", precision="fp32")  # on a GPU the whole volume when it fits
    assert info_whole["Engine"] == "tiled" and info_whole["Tiles"] == 1
    monkeypatch.setattr(tiling, "_whole_fits_gpu", lambda *a: False)  # as when it does not
    streamed, info = _run(net.eval(), x, device="cuda", precision="fp32")
    spread = cpu.max() - cpu.min()
    assert info["Engine"] == "streamed" and info["Device"].startswith("cuda") and info["PeakDeviceMemoryMiB"] > 0
    assert np.abs(streamed - whole).max() <= 1e-4 * spread
    assert np.abs(whole - cpu).max() <= 1e-4 * spread


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_half_precision_close_to_fp32(precision):
    torch.manual_seed(0)
    net = ReCNN(layers=6, filters=16).eval()
    x = np.random.default_rng(1).random((32, 32, 32)).astype(np.float32)
    fp32, _ = _run(net, x, device="cuda", precision="fp32")
    half, info = _run(net, x, device="cuda", precision=precision)
    assert info["Precision"] == precision
    assert np.abs(half - fp32).max() <= 2e-2 * (fp32.max() - fp32.min())


def test_cuda_ensemble_and_background_skipping():
    torch.manual_seed(0)
    net = ReCNN(layers=4, filters=8).eval()
    x = np.zeros((40, 40, 40), np.float32)
    x[15:22, 14:20, 16:24] = np.random.default_rng(2).random((7, 6, 8)) + 0.5
    source = ArrayField(x)
    options = EngineOptions(device="cuda", precision="fp32", progress=False, ensemble=2)
    dense, _ = run_self_ensemble(net, lambda box: source.read(box)[None], x.shape, options)
    skipped, info = run_self_ensemble(net, lambda box: source.read(box)[None], x.shape, options,
                                      foreground=source.nonzero_box())
    assert info["BackgroundSkipped"] > 0.2
    assert np.abs(skipped - dense).max() <= 1e-4 * (dense.max() - dense.min())
