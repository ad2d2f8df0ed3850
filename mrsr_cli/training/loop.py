"""The training loop (Pham et al. 2019 §2-4), read top to bottom: data, network, optimiser, steps.

Every piece it calls lives in its own module of this package: the configuration
(:mod:`.config`), the images (:mod:`.volumes`), patch sampling and its augmentations
(:mod:`.sampler`, :mod:`.augment`), the loss expression (:mod:`.losses`; ``psnr``: per-patch
dB gain over the ILR input), ``--init-from`` surgery (:mod:`.surgery`), validation
(:mod:`.validation`), checkpoints that resume to the same result (:mod:`.checkpoint`) and the
model's metadata (:mod:`.metadata`).

Determinism: the weights are initialised from ``torch.manual_seed(seed)`` and patch batch ``i``
is a function of ``(seed, i)`` (:mod:`.sampler`), so a resumed run repeats exactly what the
uninterrupted one would have done.

Example::

    cfg = TrainConfig(inputs=["hr.nii.gz"], output="m.safetensors", arch_params={"layers": 4, "filters": 8}, epochs=1)
    train(cfg)
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

import numpy as np

from mrsr_cli.console import NOTICE
from mrsr_cli.errors import UsageError
from mrsr_cli.training import distributed
from mrsr_cli.training.checkpoint import load_checkpoint, save_checkpoint
from mrsr_cli.training.config import VAL_PSF_SCALES, TrainConfig
from mrsr_cli.training.losses import parse_loss
from mrsr_cli.training.sampler import PatchSampler
from mrsr_cli.training.validation import validate, validate_pairs
from mrsr_cli.training.volumes import load_training_volume, load_validation_volume, pair_training_volume

log = logging.getLogger("mrsr")


def train(cfg: TrainConfig) -> dict:
    """Train a model as configured; returns a summary dict (also logged)."""
    import torch

    from mrsr_cli.data.io import check_outputs, require_suffix
    from mrsr_cli.infer.device import resolve_device, resolve_precision
    from mrsr_cli.models.store import save_model
    from mrsr_cli.training.metadata import model_metadata

    pair_paths = [p for pair in (cfg.pairs or []) + (cfg.val_pairs or []) for p in pair]
    inputs = [*cfg.inputs, *pair_paths, *(cfg.references or []), *(cfg.tissue_maps or []), *(cfg.val or []),
              *([cfg.init_from] if cfg.init_from and Path(cfg.init_from).is_file() else [])]
    ckpt_path = Path(cfg.checkpoint or str(cfg.output).removesuffix(".safetensors") + ".ckpt.safetensors")
    log_path = Path(cfg.log_file or str(cfg.output).removesuffix(".safetensors") + ".log.jsonl")
    # the three files a run writes, as one set; a resumed run appends to its curve and rewrites its checkpoint
    check_outputs([require_suffix(cfg.output, (".safetensors",)), ckpt_path, log_path], inputs, cfg.force,
                  may_exist=[ckpt_path, log_path] if cfg.resume else ())
    ddp = distributed.detect()
    if cfg.batch % ddp.world_size:
        raise UsageError(f"the batch of {cfg.batch} patches does not split evenly over {ddp.world_size} processes; "
                         f"give a multiple of {ddp.world_size}")
    device = distributed.start(ddp, resolve_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    per_rank = cfg.batch // ddp.world_size
    my_patches = range(ddp.rank * per_rank, (ddp.rank + 1) * per_rank)

    # -- data
    volumes, pairs, val_pairs = _training_data(cfg)
    sampler = PatchSampler(volumes, cfg)
    val_volumes = [load_validation_volume(p, cfg.guided, cfg.seed) for p in cfg.val or []]

    # -- model, loss and optimiser
    net, arch = _network(cfg)
    net = net.to(device).to(memory_format=torch.channels_last_3d)
    loss_expression, loss_state = _loss(cfg, volumes, device)
    extra_params = [p for module in loss_state.values() for p in module.parameters()]
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable + extra_params, lr=cfg.lr, betas=(0.9, 0.999))
    model = torch.nn.parallel.DistributedDataParallel(net) if ddp.enabled else net
    iters_per_epoch = max(1, cfg.patches_per_epoch // cfg.batch)
    total_iters = iters_per_epoch * cfg.epochs
    state = {"iteration": 0, "best_psnr": None, "best_epoch": None, "history": []}
    best_weights: dict = {}
    if cfg.resume:
        state, best_weights = load_checkpoint(cfg.resume, net, optimizer, loss_state)
        log.info("resumed from %s at iteration %d", cfg.resume, state["iteration"])

    def lr_at(iteration: int) -> float:
        if not cfg.lr_decay:
            return cfg.lr
        gamma, every = cfg.lr_decay
        return cfg.lr * gamma ** ((iteration // iters_per_epoch) // every)

    def checkpoint() -> None:
        state["elapsed"] = elapsed_before + time.time() - started
        save_checkpoint(ckpt_path, net, optimizer, dict(state, best_weights=best_weights), loss_state)

    def on_sigterm(signum, frame):  # SLURM preemption / scancel: checkpoint like Ctrl-C
        raise KeyboardInterrupt

    # -- steps
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    started = time.time()
    elapsed_before = float(state.get("elapsed", 0.0))
    window = _LossWindow()
    log_mode = "a" if cfg.resume else "w"
    if not ddp.is_main:  # rank 0 alone writes the curve
        log_path, log_mode = Path(os.devnull), "w"
    progress = _TrainProgress(total_iters, enabled=not cfg.quiet and ddp.is_main)
    progress.update(state["iteration"], {})
    stop_reason = "completed"
    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    with open(log_path, log_mode) as log_fh:
        def record(entry: dict) -> None:
            log_fh.write(json.dumps(entry) + "\n")
            log_fh.flush()
            progress.update(state["iteration"], entry)

        try:
            while state["iteration"] < total_iters:
                it = state["iteration"]
                if cfg.max_minutes and distributed.any_across(ddp, (time.time() - started) / 60 > cfg.max_minutes):
                    stop_reason = "time limit"
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(it)
                if ddp.enabled:
                    x_np, y_np = sampler.batch(None, it, indices=my_patches)
                else:
                    x_np, y_np = sampler.batch(np.random.default_rng([cfg.seed, it]), it)
                x = torch.from_numpy(x_np).to(device).to(memory_format=torch.channels_last_3d)
                y = torch.from_numpy(y_np).to(device)
                model.train()
                with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                    pred = model(x)
                loss, terms = loss_expression(pred, y, x[:, :1], {"iteration": it, "epoch": it // iters_per_epoch})
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                distributed.average_gradients(ddp, extra_params)  # DDP averages the network's
                optimizer.step()
                state["iteration"] = it + 1
                window.add(loss, terms, per_rank)
                if state["iteration"] % 10 == 0 or state["iteration"] == total_iters:
                    record(window.flush(ddp, state["iteration"], iters_per_epoch, lr_at(it)))
                if state["iteration"] % iters_per_epoch == 0 and (val_volumes or cfg.val_pairs):
                    model_psnr, spline_psnr, gains = _validate_epoch(cfg, net, ddp, precision, val_volumes, val_pairs,
                                                                     sampler.low_field)
                    epoch = state["iteration"] // iters_per_epoch
                    entry = {"epoch": epoch, "val_psnr": model_psnr, "val_psnr_spline": spline_psnr, "val_gain_per_factor": gains}
                    state["history"].append(entry)
                    record(entry)
                    log.info("epoch %d: val PSNR %.3f dB (spline %.3f dB; gain per factor %s dB)", epoch, model_psnr, spline_psnr, gains)
                    if state["best_psnr"] is None or model_psnr > state["best_psnr"]:
                        state["best_psnr"], state["best_epoch"] = model_psnr, epoch
                        best_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
                if state["iteration"] % cfg.checkpoint_every == 0 and ddp.is_main:
                    checkpoint()
        except KeyboardInterrupt:
            progress.close()
            if not ddp.is_main:  # the ranks hold the same weights after every step: rank 0's checkpoint is the run's
                raise
            checkpoint()
            log.warning("interrupted at iteration %d; checkpoint saved: resume from %s (mrsr train --resume)", state["iteration"], ckpt_path)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
    progress.close()

    # -- the model file
    state["elapsed"] = elapsed_before + time.time() - started
    summary = {"output": cfg.output, "iterations": state["iteration"], "seconds": round(state["elapsed"], 1),
               "best_val_psnr": state["best_psnr"], "stopped": stop_reason, "checkpoint": str(ckpt_path), "log": str(log_path),
               "world_size": ddp.world_size, "rank": ddp.rank}
    if not ddp.is_main:  # rank 0 writes the checkpoint and the model; the others wait for it in stop()
        distributed.stop(ddp)
        return summary
    save_checkpoint(ckpt_path, net, optimizer, dict(state, best_weights=best_weights), loss_state)
    if best_weights:
        net.load_state_dict(best_weights)
    meta = model_metadata(cfg, arch=arch, precision=precision, device=device, state=state, stop_reason=stop_reason,
                          volumes=volumes, pairs=pairs, loss_state=loss_state, world_size=ddp.world_size)
    net = net.to("cpu").to(memory_format=torch.contiguous_format)
    save_model(cfg.output, net, meta)
    distributed.stop(ddp)
    log.log(NOTICE, "saved %s (%d iterations, %.0f s)", cfg.output, state["iteration"], state["elapsed"])
    return summary


def _training_data(cfg: TrainConfig) -> tuple[list, list, list]:
    """``(training volumes, prepared training pairs, prepared validation pairs)``."""
    if not cfg.pairs:
        refs = cfg.references or [None] * len(cfg.inputs)
        return [load_training_volume(p, r, cfg.tissue_maps if i == 0 else None)
                for i, (p, r) in enumerate(zip(cfg.inputs, refs))], [], []
    from mrsr_cli.training.pairs import prepare_pair

    pairs = [prepare_pair(lr, hr, register=cfg.register_pairs, patch=cfg.patch, threads=cfg.threads) for lr, hr in cfg.pairs]
    val_pairs = [prepare_pair(lr, hr, register=cfg.register_pairs, patch=0, threads=cfg.threads) for lr, hr in cfg.val_pairs or []]
    return [pair_training_volume(pair) for pair in pairs], pairs, val_pairs


def _loss(cfg: TrainConfig, volumes: list, device):
    """``(loss expression, {name: module} of its stateful terms)``; the stateful terms (learned
    sharpness filters) are set up on the training volumes and train with the network."""
    loss_expression = parse_loss(cfg.loss)
    loss_state = loss_expression.build_state(cfg.seed)
    for module in loss_state.values():
        module.setup(volumes, cfg.seed)
        module.to(device)
    return loss_expression, loss_state


def _validate_epoch(cfg: TrainConfig, net, ddp, precision: str, val_volumes: list, val_pairs: list, low_field):
    """``(network PSNR, spline PSNR, gains)`` on the validation volumes or pairs; each process
    scores its share (all of them without a launcher) and the scores are gathered."""
    net.eval()

    def gather(obj):
        return distributed.gather(ddp, obj)

    if cfg.val_pairs:
        return validate_pairs(net, val_pairs[ddp.rank::ddp.world_size], precision, gather=gather)
    return validate(net, val_volumes[ddp.rank::ddp.world_size], cfg.val_factors, precision, gather=gather, low_field=low_field,
                    psf_scales=VAL_PSF_SCALES if cfg.psf_input else (1.0,))


def _network(cfg: TrainConfig):
    """``(network, architecture)``: a new one seeded by ``cfg.seed``, or ``cfg.init_from`` adapted (:mod:`.surgery`)."""
    import torch

    from mrsr_cli.models import build_model
    from mrsr_cli.training.surgery import start_from

    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        net, arch, _ = start_from(cfg)
        return net, arch
    try:
        return build_model(cfg.arch, cfg.model_params()), cfg.arch
    except ValueError as exc:
        raise UsageError(f"architecture {cfg.arch}: {exc}") from None


class _LossWindow:
    """The loss (and its terms) summed over the patches since the last log line."""

    def __init__(self):
        self.loss, self.terms, self.patches, self.start = 0.0, {}, 0, time.perf_counter()

    def add(self, loss, terms: dict, patches: int) -> None:
        self.loss += float(loss.detach()) * patches
        for term, value in terms.items():
            self.terms[term] = self.terms.get(term, 0.0) + float(value) * patches
        self.patches += patches

    def flush(self, ddp, iteration: int, iters_per_epoch: int, lr: float) -> dict:
        """The log record of the window (means across processes), and a new window."""
        rate = ddp.world_size * self.patches / max(time.perf_counter() - self.start, 1e-9)
        means = distributed.mean_across(ddp, [self.loss / self.patches] + [v / self.patches for v in self.terms.values()])
        entry = {"iteration": iteration, "epoch": iteration / iters_per_epoch, "loss": means[0], "patches_per_s": rate, "lr": lr}
        if len(self.terms) > 1:  # one term is the loss itself
            entry["loss_terms"] = dict(zip(self.terms, means[1:]))
        self.__init__()
        return entry


class _TrainProgress:
    """rich progress on a terminal; plain log lines every ~10 % otherwise (quiet if asked)."""

    def __init__(self, total: int, enabled: bool):
        from rich.progress import TextColumn, TimeRemainingColumn

        from mrsr_cli.console import ProgressBar

        self.total, self.enabled, self.last_pct = total, enabled, -1
        self.fields = {"loss": float("nan"), "rate": 0.0, "val": ""}
        self.bar = ProgressBar(
            "training", total, TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.3g}  {task.fields[rate]:.1f} patch/s {task.fields[val]}"),
            TimeRemainingColumn(), enabled=enabled, transient=False, **self.fields)

    def update(self, iteration: int, record: dict) -> None:
        if "loss" in record:
            self.fields["loss"], self.fields["rate"] = record["loss"], record["patches_per_s"]
        if "val_psnr" in record:
            self.fields["val"] = f" val {record['val_psnr']:.2f} dB"
        if self.bar.bar:
            self.bar.update(completed=iteration, **self.fields)
        elif self.enabled and "loss" in record:
            pct = int(100 * iteration / max(self.total, 1)) // 10
            if pct != self.last_pct:
                self.last_pct = pct
                log.info("iteration %d/%d loss %.4g %.1f patch/s%s", iteration, self.total, self.fields["loss"], self.fields["rate"], self.fields["val"])

    def close(self) -> None:
        self.bar.close()
