"""Validation during training: PSNR of the network against spline on held-out volumes, per factor (and PSF)."""

from __future__ import annotations

import numpy as np

from mrsr_cli.models.channels import encode_reference, psf_encoding


def _network_output(net, channels, shape, precision: str, ensemble: int = 1) -> np.ndarray:
    """The network over its input ``channels`` (fields with ``read(box)``) on a grid of ``shape``, through the engine."""
    from mrsr_cli.infer.tiling import EngineOptions, run_self_ensemble

    options = EngineOptions(device=str(next(net.parameters()).device.type), precision=precision, progress=False, ensemble=ensemble)
    out, _ = run_self_ensemble(net, lambda box: np.stack([c.read(box) for c in channels]), shape, options)
    return out


def _gathered(net_psnr: list, spline_psnr: list, gather) -> tuple[list, list]:
    """Every process's scores, in rank order (``gather`` from distributed training), or these alone."""
    if gather is None:
        return net_psnr, spline_psnr
    shares = gather((net_psnr, spline_psnr))
    return [v for share in shares for v in share[0]], [v for share in shares for v in share[1]]


def validate(net, volumes: list, factors: list, precision: str, ensemble: int = 1, gather=None,
             low_field=None, psf_scales=(1.0,)) -> tuple[float, float, list]:
    """Mean PSNR (head mask) of the network and of spline on the validation volumes, each
    simulated at each of ``factors`` (as a ``low_field`` scan when given: its noise, seeded)
    and, for each factor, with a Gaussian PSF of each of ``psf_scales`` LR voxels (1: simulate's;
    a model with PSF channels is told it), and the gains per factor and PSF (dB, averaged over
    volumes; factor-major).
    ``ensemble``: flip self-ensemble passes, as ``upscale --ensemble``.  ``gather`` (distributed
    training): each process scores its share of the volumes and ``gather`` collects every
    process's scores before they are averaged."""
    from mrsr_cli.data.interpolate import make_resampler
    from mrsr_cli.degrade.simulate import simulate_lowres
    from mrsr_cli.evaluation.metrics import head_mask, psnr
    from mrsr_cli.models.channels import ArrayField, network_inputs

    net_psnr, spline_psnr = [], []
    for hr, grid, ref in volumes:
        mask = head_mask(hr)
        # the reference does not depend on the factor: encode it once per volume
        encoded = ArrayField(encode_reference(ref, net.params.get("reference_encoding", "intensity"))) if ref is not None else None
        for factor, scale in ((f, s) for f in factors for s in psf_scales):
            fwhm = None if scale == 1.0 else tuple(np.asarray(grid.voxel_size) * np.asarray(factor, dtype=float) * scale)
            lr, lr_grid, _ = simulate_lowres(hr, grid, factor=factor, fwhm=fwhm, low_field=low_field, seed=0)
            resampler = make_resampler(lr, lr_grid, grid, order=3)
            spline = resampler.full()
            channels = network_inputs(net.params, grid.shape, resampler, factor, encoded, voxel_size=grid.voxel_size,
                                      psf=psf_encoding([scale] * 3, ("gaussian",) * 3, factor))
            net_psnr.append(psnr(hr, _network_output(net, channels, grid.shape, precision, ensemble), mask))
            spline_psnr.append(psnr(hr, spline, mask))
    net_psnr, spline_psnr = _gathered(net_psnr, spline_psnr, gather)
    gains = (np.array(net_psnr) - np.array(spline_psnr)).reshape(-1, len(factors) * len(psf_scales)).mean(axis=0)
    return float(np.mean(net_psnr)), float(np.mean(spline_psnr)), [round(float(g), 3) for g in gains]


def validate_pairs(net, pairs: list, precision: str, gather=None) -> tuple[float, float, list]:
    """Mean PSNR (HR head mask, inside the LR field of view) of the network on held-out real
    pairs (:class:`mrsr_cli.training.pairs.PreparedPair`) and of their spline-interpolated LR images, and
    the gain per pair (dB)."""
    from mrsr_cli.evaluation.metrics import head_mask, psnr
    from mrsr_cli.models.channels import ArrayField, network_inputs

    net_psnr, spline_psnr = [], []
    for pair in pairs:
        mask = head_mask(pair.hr) & pair.overlap
        channels = network_inputs(net.params, pair.hr.shape, ArrayField(pair.ilr), pair.factor, voxel_size=pair.grid.voxel_size)
        net_psnr.append(psnr(pair.hr, _network_output(net, channels, pair.hr.shape, precision), mask))
        spline_psnr.append(psnr(pair.hr, pair.ilr, mask))
    net_psnr, spline_psnr = _gathered(net_psnr, spline_psnr, gather)
    return float(np.mean(net_psnr)), float(np.mean(spline_psnr)), [round(a - b, 3) for a, b in zip(net_psnr, spline_psnr)]
