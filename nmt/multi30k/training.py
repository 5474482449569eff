"""Training the GRU translator: teacher forcing, Adam, gradient clipping, the lr schedule, and a
resumable loop with checkpoints, TensorBoard scalars and a JSON record.

    model = build_model(cfg, len(data.src_vocab), len(data.tgt_vocab))
    train(model, data, cfg, run_dir)            # run_dir/checkpoint.pt, train.json, events

A checkpoint (run_dir/checkpoint.pt: weights, optimizer, torch's RNG, the loop position and any
`extra_state`, e.g. the compression pipeline's) is written every `checkpoint_every` steps and at
every epoch end; `resume=True` continues from it with the same batches and random draws, so the
run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
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
from torch import nn

from common.atomic import atomic_write, atomic_write_json
from common.distill import Distill, distillation_loss
from common.scalars import RunScalars
from nmt.multi30k.config import Multi30kConfig
from nmt.multi30k.data import PAD, Multi30kData, batch_tensors, length_batches
from nmt.multi30k.evaluation import split_loss
from nmt.multi30k.model import Translator, token_loss

__all__ = ["CHECKPOINT", "learning_rate", "steps_per_epoch", "total_steps", "train"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


def steps_per_epoch(cfg: Multi30kConfig, data: Multi30kData) -> int:
    return len(length_batches(data.train, cfg.batch_size))


def total_steps(cfg: Multi30kConfig, data: Multi30kData, epochs: int) -> int:
    n = epochs * steps_per_epoch(cfg, data)
    return min(n, cfg.max_steps) if cfg.max_steps else n


def learning_rate(cfg: Multi30kConfig, step: int, total: int) -> float:
    """The rate at optimizer step `step` (0-based): cosine from lr to lr_min over `total` steps,
    or constant."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    frac = min(step, total) / max(1, total)
    return cfg.lr_min + (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac)) / 2


def _distill_term(
    distill: Distill, logits: torch.Tensor, batch: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """W * the distillation loss over the target positions that are not padding, the teacher
    teacher-forced on the same batch."""
    src, src_len, tgt_in, tgt_out = batch
    with torch.no_grad():
        teacher = distill.teacher(src, src_len, tgt_in)
    keep = tgt_out.reshape(-1) != PAD
    vocab = logits.size(-1)
    term = distillation_loss(
        logits.reshape(-1, vocab)[keep], teacher.reshape(-1, vocab)[keep], distill.temperature
    )
    return distill.weight * term


def train(
    model: Translator,
    data: Multi30kData,
    cfg: Multi30kConfig,
    run_dir: str | os.PathLike,
    *,
    callback: Callable[[int], object] | None = None,
    resume: bool = False,
    epochs: int | None = None,
    extra_state: Any = None,
    lr_scale: float = 1.0,
    distill: Distill | None = None,
    penalty: Callable[[], torch.Tensor | None] | None = None,
    writer: Any = None,
    progress: bool = True,
    label: str = "train",
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Train `model` in place for `epochs` (default cfg.epochs) epochs, at most cfg.max_steps
    steps; returns the record also written to run_dir/train.json.

    `callback(i)` runs after every optimizer step, `i` its 0-based index (the compression passes'
    events fire there). `lr_scale` scales the schedule, `distill` adds its term, `penalty()` is
    added to the loss when not None. The record's "valid" lists every epoch's validation loss."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    n_epochs = cfg.epochs if epochs is None else epochs
    if n_epochs < 0 or not lr_scale > 0:
        raise ValueError(f"need epochs >= 0 and lr_scale > 0, got {n_epochs} and {lr_scale}")
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = steps_per_epoch(cfg, data)
    total = total_steps(cfg, data, n_epochs)
    state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "train_time_s": 0.0,
                             "tokens": 0, "valid": []}  # fmt: skip
    ckpt_path = run_dir / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        if extra_state is not None and ckpt.get("extra") is not None:
            extra_state.load_state_dict(ckpt["extra"])
        if ckpt.get("config") != cfg.to_dict():
            log.warning("resuming %s with a config that differs from its checkpoint's", run_dir)
        state = ckpt["state"]
        log.info("resumed %s at step %d (epoch %d)", run_dir, state["step"], state["epoch"])
    else:
        torch.manual_seed(cfg.seed + 1)  # the dropout stream

    def save() -> None:
        obj = {"model": model.state_dict(), "optimizer": opt.state_dict(),
               "torch_rng": torch.get_rng_state(), "state": dict(state), "config": cfg.to_dict(),
               "extra": None if extra_state is None else extra_state.state_dict()}  # fmt: skip
        atomic_write(ckpt_path, lambda fh: torch.save(obj, fh))

    scalars = RunScalars(run_dir, writer, state["step"])
    bar = tqdm(total=total, initial=state["step"], unit="step", desc=label, dynamic_ncols=True,
               disable=not (progress and sys.stderr.isatty()))  # fmt: skip
    # while a bar is drawn, log lines go above it instead of through it
    redirect = contextlib.nullcontext() if bar.disable else logging_redirect_tqdm()
    log.info("%s: %d parameters, %d steps/epoch, %d steps", label,
             sum(p.numel() for p in model.parameters()), per_epoch, total)  # fmt: skip
    model.train()
    recent: list[float] = []
    try:
        with redirect:
            while state["step"] < total and state["epoch"] < n_epochs:
                batches = length_batches(data.train, cfg.batch_size, seed=cfg.seed,
                                         epoch=state["epoch"])  # fmt: skip
                while state["batch"] < len(batches) and state["step"] < total:
                    t0 = time.perf_counter()
                    step = state["step"]
                    lr = lr_scale * learning_rate(cfg, step, total)
                    for group in opt.param_groups:
                        group["lr"] = lr
                    batch = batch_tensors(data.train, batches[state["batch"]], device)
                    src, src_len, tgt_in, tgt_out = batch
                    rng = np.random.default_rng([cfg.seed, 7, step])
                    logits = model(src, src_len, tgt_in, cfg.teacher_forcing, rng)
                    loss = token_loss(logits, tgt_out, cfg.label_smoothing)
                    if distill is not None:
                        loss = loss + _distill_term(distill, logits, batch)
                    if penalty is not None and (extra := penalty()) is not None:
                        loss = loss + extra
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.clip > 0:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                    opt.step()
                    state["step"] += 1
                    state["batch"] += 1
                    state["tokens"] += int((tgt_out != PAD).sum()) + int(src_len.sum())
                    state["train_time_s"] += time.perf_counter() - t0
                    recent.append(float(loss.detach()))
                    if callback is not None:
                        callback(step)
                    bar.update(1)
                    if state["step"] % cfg.log_interval == 0:
                        mean = sum(recent) / len(recent)
                        recent.clear()
                        scalars.add("train/loss", mean, state["step"])
                        scalars.add("train/lr", lr, state["step"])
                        bar.set_postfix(loss=f"{mean:.3f}", lr=f"{lr:.2e}")
                        log.info("step %d epoch %d loss %.4f lr %.3e", state["step"],
                                 state["epoch"], mean, lr)  # fmt: skip
                    if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                        save()
                if state["batch"] >= len(batches):
                    state["epoch"] += 1
                    state["batch"] = 0
                    vloss = split_loss(model, data.valid, cfg.eval_batch_size, device)
                    model.train()
                    scalars.add("valid/loss", vloss, state["step"])
                    state["valid"].append(
                        {"epoch": state["epoch"], "step": state["step"], "loss": vloss}
                    )
                    log.info("epoch %d: valid loss %.4f (ppl %.2f)", state["epoch"], vloss,
                             math.exp(min(vloss, 50.0)))  # fmt: skip
                    save()
    except KeyboardInterrupt:
        save()
        raise
    finally:
        bar.close()
        scalars.close()
    save()
    result = {
        "steps": state["step"],
        "epochs_done": state["epoch"] + state["batch"] / max(1, per_epoch),
        "steps_per_epoch": per_epoch,
        "train_time_s": state["train_time_s"],
        "tokens_per_s": state["tokens"] / max(state["train_time_s"], 1e-9),
        "params": sum(p.numel() for p in model.parameters()),
        "valid_loss": state["valid"][-1]["loss"] if state["valid"] else None,
        "valid": [dict(v) for v in state["valid"]],
    }
    atomic_write_json(run_dir / "train.json", result, sort_keys=True)
    return result
