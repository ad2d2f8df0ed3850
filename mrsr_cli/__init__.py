"""mrsr: brain MRI super-resolution (Pham et al. 2019 ReCNN; DNSP priors and EDSR-3D of Cherukuri et al.) as a command-line toolkit.

A pure library with a thin typer CLI on top.  The subpackages are layers: a module imports only
from its own layer or the layers above it in this list (``errors`` and ``console`` are shared by
all; ``tests/test_extending.py`` checks it):

* :mod:`mrsr_cli.data` — NIfTI I/O, grids and affines, resampling, registration, BIDS sidecars;
* :mod:`mrsr_cli.degrade` — the PSF table, the observation model and its adjoint, ``simulate``, low field;
* :mod:`mrsr_cli.evaluation` — metrics (PSNR, SSIM, the head mask: training and methods use them too) and statistics;
* :mod:`mrsr_cli.models` — the network registry and architectures, the channel contract, model files, the zoo;
* :mod:`mrsr_cli.infer` — device and precision, exact tiling and the engine over a prepared network;
* :mod:`mrsr_cli.methods` — ``upscale --method``: spline, cnn, lrtv; the reference's guidance and data consistency;
* :mod:`mrsr_cli.training` — configuration, sampling, augmentations, losses and priors, the loop;
* :mod:`mrsr_cli.app` — the CLI, its file-level verbs, Nipype interfaces, workflows, the preview.

docs/extending.md says where a new network, loss term, method or degradation goes.  torch is
imported lazily so that ``mrsr --help`` stays instant.

The Python API, on in-memory nibabel images (:mod:`mrsr_cli.app.api`)::

    import mrsr_cli
    sr = mrsr_cli.upscale(nib.load("lr.nii.gz"), factor=2)   # a nibabel image
    lr = mrsr_cli.simulate(hr, factor=2, acquisition="kspace")
    rows = mrsr_cli.evaluate(hr, sr)
"""

__version__ = "0.1.0"
API = ("upscale", "simulate", "evaluate")


def __getattr__(name: str):  # the API is imported when first used: `import mrsr_cli` stays light
    if name in API:
        from mrsr_cli.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'mrsr_cli' has no attribute {name!r}")
