"""Training and scoring the surname classifier.

The tutorial trains one name at a time (1M steps, softmax + MSE loss, Adam 1e-4, classes drawn
uniformly); the `cpu` preset trains on length-bucketed mini-batches with cross-entropy instead,
the `paper` preset keeps the tutorial's recipe. `train` counts optimizer steps, not epochs, and
calls back after every step (a compression pipeline's mask update hooks in there).

`device` and `precision` say where and how it trains (bf16 / fp16 under autocast, fp16 with loss
scaling; evaluation in fp32); checkpoints hold the CPU's and, on a GPU, the CUDA random state,
and resume on another device. The classifier trains in one process (no data parallelism: its
batches are small).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.atomic import atomic_write
from common.device import Amp, check_resumed_precision, restore_rng, rng_state
from nmt.names.config import NamesConfig
from nmt.names.data import NamesData, batch_stream
from nmt.names.model import NamesClassifier

__all__ = ["StepCallback", "evaluate", "train"]

log = logging.getLogger(__name__)


def _loss(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    target = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return F.mse_loss(torch.softmax(logits, dim=1), target)


@torch.no_grad()
def evaluate(
    model: NamesClassifier,
    data: NamesData,
    batch_size: int = 2048,
    device: torch.device | str = "cpu",
) -> dict:
    """accuracy, balanced_accuracy (mean recall over classes present), loss (cross-entropy),
    spike_rate (spikes per neuron per letter over all layers; None for the analog cell) and
    the spike counts it comes from."""
    was_training = model.training
    model.eval()
    preds, losses = [], 0.0
    spikes = steps = None
    order = np.argsort(data.lengths, kind="stable")  # little padding, same result
    for i in range(0, len(data), batch_size):
        idx = order[i : i + batch_size]
        x, lengths, labels = data.batch(idx, device)
        logits = model(x, lengths)
        losses += float(F.cross_entropy(logits, labels, reduction="sum"))
        preds.append((idx, logits.argmax(1).cpu().numpy()))
        stats = model.spike_stats()
        if stats is not None:
            s, n = np.array(stats["spikes"]), np.array(stats["neuron_steps"])
            spikes = s if spikes is None else spikes + s
            steps = n if steps is None else steps + n
    model.train(was_training)
    pred = np.empty(len(data), dtype=np.int64)
    for idx, p in preds:
        pred[idx] = p
    correct = pred == data.labels
    recalls = [correct[data.labels == k].mean() for k in np.unique(data.labels)]
    out = {
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "loss": losses / max(len(data), 1),
        "n": len(data),
        "spike_rate": None,
        "layer_spike_rates": None,
        "spikes": None,
        "neuron_steps": None,
    }
    if spikes is not None:
        out.update(
            spike_rate=float(spikes.sum() / steps.sum()),
            layer_spike_rates=[float(a / b) for a, b in zip(spikes, steps, strict=True)],
            spikes=[int(v) for v in spikes],
            neuron_steps=[int(v) for v in steps],
        )
    return out


def _lr_at(config: NamesConfig, step: int) -> float:
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))


def _save_checkpoint(obj: dict, path: Path) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


StepCallback = Callable[[int, nn.Module, float], None]


def train(
    model: NamesClassifier,
    data: tuple[NamesData, NamesData, tuple[str, ...]],
    config: NamesConfig,
    callback: StepCallback | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    precision: str = "fp32",
    extra_state: Any = None,
) -> dict:
    """Train `model` for config.steps optimizer steps on data[0] with Adam.

    `callback(step, model, loss)` runs after every optimizer step (step counts from 1), e.g.
    a compression pipeline's mask update. With `run_dir`, a checkpoint (model, optimizer,
    step, RNG) is written atomically every config.checkpoint_every steps and at the end, a
    run resumes from it, and scalars go to TensorBoard there. `extra_state` (anything with
    state_dict / load_state_dict: a compression pipeline's event count and records) is saved in
    every checkpoint and restored from it, so a resumed fine-tune fires no event twice. Returns
    {"train_time_s", "steps", "final_loss", "resumed_from"}.
    """
    train_data, test_data, _ = data
    model.to(device)
    amp = Amp(precision, device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, elapsed = 0, 0.0
    ckpt_path = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if ckpt_path is not None and ckpt_path.is_file():
        # on the CPU: RNG states are CPU tensors; the optimizer's state follows its parameters
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt.get("config") != config.to_dict():
            raise ValueError(
                f"{ckpt_path} was written by a different configuration; remove it or use "
                "another run directory"
            )
        check_resumed_precision(ckpt.get("precision"), precision, str(ckpt_path))
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        amp.load_state_dict(ckpt)
        restore_rng(ckpt, device, seed=config.seed + 1 + int(ckpt["step"]))
        # checkpoints written before the pipeline state was kept have no "extra": nothing to load
        if extra_state is not None and ckpt.get("extra") is not None:
            extra_state.load_state_dict(ckpt["extra"])
        start, elapsed = int(ckpt["step"]), float(ckpt["train_time_s"])
        log.info("resuming %s at step %d", run_dir, start)
    else:
        torch.manual_seed(config.seed + 1)  # dropout stream
    writer = None
    if run_dir is not None and start < config.steps:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir))
    bar = None
    if progress and sys.stderr.isatty():  # in a log file every redraw of a bar would pile up
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=config.run_id(), leave=False)

    def save(step: int, spent: float) -> None:
        if ckpt_path is None:
            return
        state = {
            "config": config.to_dict(),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            **rng_state(device),
            "precision": precision,
            **amp.state_dict(),
            "step": step,
            "train_time_s": spent,
            "extra": None if extra_state is None else extra_state.state_dict(),
        }
        _save_checkpoint(state, ckpt_path)

    model.train()
    stream = batch_stream(train_data, config, start)
    loss_value = float("nan")
    t0 = time.perf_counter()
    step = start
    for step in range(start + 1, config.steps + 1):
        idx = next(stream)
        x, lengths, labels = train_data.batch(idx, device)
        for group in opt.param_groups:
            group["lr"] = _lr_at(config, step - 1)
        opt.zero_grad(set_to_none=True)
        with amp.autocast():
            loss = _loss(model(x, lengths), labels, config.loss)
        amp.backward(loss)
        if config.grad_clip > 0:
            amp.unscale(opt)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        amp.step(opt)
        loss_value = float(loss.detach())
        if callback is not None:
            callback(step, model, loss_value)
        if writer is not None and (step % 50 == 0 or step == config.steps):
            writer.add_scalar("train/loss", loss_value, step)
            writer.add_scalar("train/lr", _lr_at(config, step - 1), step)
        if config.eval_every and step % config.eval_every == 0 and step < config.steps:
            ev = evaluate(model, test_data, config.eval_batch_size, device)
            model.train()
            if writer is not None:
                writer.add_scalar("test/accuracy", ev["accuracy"], step)
                if ev["spike_rate"] is not None:
                    writer.add_scalar("test/spike_rate", ev["spike_rate"], step)
            log.info("step %d test accuracy %.4f", step, ev["accuracy"])
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save(step, elapsed + time.perf_counter() - t0)
        if bar is not None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss_value:.3f}")
    elapsed += time.perf_counter() - t0
    if step > start:
        save(step, elapsed)
        log.info("trained %d steps (from step %d), %.0f s of training in all", step, start, elapsed)
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    return {
        "train_time_s": elapsed,
        "steps": config.steps,
        "final_loss": loss_value,
        "resumed_from": start,
    }
