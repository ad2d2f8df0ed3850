"""Network surgery for ``train --init-from``: add input channels with zero weights, freeze the rest.

The input layer is found, not assumed: it is the first 3-D convolution whose input channels are
the network's (:func:`input_layer`), so an architecture may register other parameters before it.
"""

from __future__ import annotations

import logging

import numpy as np

from mrsr_cli.errors import MrsrError, UsageError

log = logging.getLogger("mrsr")

# The constant-map channel kinds in channel order (after the image, before any reference):
# (metadata key, the TrainConfig switch that wants them, the refusal when a model has them unwanted, what they are).
CONSTANT_CHANNELS = (
    ("factor_channels", "factor_input", "takes the scale factor as input; it cannot train blind", "factor"),
    ("voxel_channels", "voxel_size_input", "takes the voxel size as input; train with --voxel-size-input", "voxel-size"),
    ("psf_channels", "psf_input", "takes the input PSF as input; train with --psf-input", "PSF"),
)


def input_layer(net) -> str:
    """The state-dict key of the weight of ``net``'s input layer: the first ``Conv3d`` that reads
    ``net.in_channels`` channels."""
    from torch import nn

    for name, module in net.named_modules():
        if isinstance(module, nn.Conv3d) and module.in_channels == net.in_channels:
            return f"{name}.weight"
    raise MrsrError(f"{type(net).__name__} has no 3-D convolution reading its {net.in_channels} input channels")


def add_input_channels(net, arch: str, params: dict, channels: int, insert_at: int | None = None):
    """Same network with more input channels inserted at ``insert_at`` (default: after the
    existing ones); new channels start with zero weights, so the result is exactly the old model
    until training teaches it to use the new input (transfer learning, Pham §6).  Channel order:
    see :mod:`mrsr_cli.models.recnn`; ``params`` are the new model's parameters except
    ``in_channels``, which still gives the old count."""
    import torch

    from mrsr_cli.models import build_model

    old = int(params.get("in_channels", 1))
    at = old if insert_at is None else insert_at
    bigger = build_model(arch, {**params, "in_channels": channels})
    state = net.state_dict()
    first = input_layer(net)
    with torch.no_grad():
        weight = torch.zeros_like(bigger.state_dict()[first])
        weight[:, :at] = state[first][:, :at]
        weight[:, at + channels - old :] = state[first][:, at:]
        state[first] = weight
    bigger.load_state_dict(state)
    return bigger


def train_new_channels_only(net, added) -> None:
    """Freeze ``net`` except the input layer's weights of the input channels where ``added`` is
    true (a boolean per input channel).  Those start at zero (:func:`add_input_channels`), so on
    inputs whose new channels read 0 -- e.g. PSF channels at simulate's PSF -- the trained model
    gives exactly the starting model's output, whatever training does."""
    import torch

    first = dict(net.named_parameters())[input_layer(net)]
    for p in net.parameters():
        p.requires_grad_(p is first)
    mask = torch.zeros((1, len(added)) + (1,) * (first.dim() - 2), dtype=first.dtype)
    mask[0, torch.as_tensor(np.flatnonzero(added))] = 1.0
    first.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))


def start_from(cfg):
    """``(network, architecture, parameters)`` of ``cfg.init_from``, with the input channels this
    run (:class:`~mrsr_cli.training.config.TrainConfig`) needs added at zero weight, and frozen
    but for them with ``new_channels_only``."""
    from mrsr_cli.models.store import load_model
    from mrsr_cli.models.zoo import resolve_model

    init_path, init_name = resolve_model(cfg.init_from)
    net, init_meta = load_model(init_path)
    arch, params = init_meta["architecture"], dict(init_meta["params"])
    added = np.zeros(int(params.get("in_channels", 1)), bool)  # which input channels this run adds
    # a model that has constant-map channels must keep them; a run that wants them adds them
    preceding = 1
    for key, switch, refusal, what in CONSTANT_CHANNELS:
        wanted = getattr(cfg, switch)
        if params.get(key, 0) and not wanted:
            raise UsageError(f"starting model {init_name} {refusal}")
        if wanted and not params.get(key, 0):
            net = add_input_channels(net, arch, {**params, key: 3}, int(params.get("in_channels", 1)) + 3, insert_at=preceding)
            added = np.insert(added, preceding, [True] * 3)
            params = dict(net.params)
            log.info("--init-from %s: added 3 zero-initialised %s channels", init_name, what)
        preceding += int(params.get(key, 0))
    have = int(params.get("in_channels", 1))
    if have > cfg.in_channels:
        raise UsageError(f"starting model {init_name} has {have} input channels, training needs {cfg.in_channels}")
    if have < cfg.in_channels:
        net = add_input_channels(net, arch, {**params, "reference_encoding": cfg.reference_encoding}, cfg.in_channels)
        added = np.append(added, [True] * (cfg.in_channels - have))
        params = dict(net.params)
        log.info("--init-from %s: added %d zero-initialised reference channel(s)", init_name, cfg.in_channels - have)
    elif cfg.guided and params.get("reference_encoding", "intensity") != cfg.reference_encoding:
        raise UsageError(f"starting model {init_name} reads its reference as {params.get('reference_encoding', 'intensity')!r}, "
                         f"not {cfg.reference_encoding!r}")
    if cfg.new_channels_only:
        if not added.any():
            raise UsageError(f"--new-channels-only: this run adds no input channel to {init_name}")
        train_new_channels_only(net, added)
        log.info("--new-channels-only: training the input layer's weights of %d new channel(s); the rest is frozen",
                 int(added.sum()))
    return net, arch, params
