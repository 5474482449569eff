"""Training the translator: the model from its config, the lr and teacher-forcing schedules, and
the resumable training loop with its checkpoints and run records.

    model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    train(model, data, config, run_dir, callback=None, resume=False)

Checkpoints (run_dir/checkpoint.pt) hold the weights, the optimizer, torch's RNG and the loop's
position, so a run resumed with `resume=True` ends with the same weights as an uninterrupted one.
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
from nmt.data import NMTData, batch_tensors, epoch_batches, steps_per_epoch_of
from nmt.evaluation import pair_loss
from nmt.presets import TranslatorConfig
from nmt.tokenize import PAD
from nmt.translator import Translator

__all__ = [
    "CHECKPOINT",
    "build_model",
    "learning_rate",
    "teacher_forcing_ratio",
    "train",
    "write_json",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


def build_model(config: TranslatorConfig, src_vocab: int, tgt_vocab: int) -> Translator:
    """A freshly initialised translator (seeded by `config.seed`)."""
    torch.manual_seed(config.seed)
    return Translator(
        src_vocab,
        tgt_vocab,
        embed=config.embed,
        hidden=config.hidden,
        layers=config.layers,
        dropout=config.dropout,
        kind=config.kind,
        faithful=config.faithful,
        surrogate=config.surrogate or None,
        threshold=config.threshold,
        stack_memory=config.stack_memory,
    )


# ----------------------------------------------------------------------------- schedules


def learning_rate(
    config: TranslatorConfig, step: int, total_steps: int, steps_per_epoch: int
) -> float:
    """The learning rate at optimizer step `step` (0-based).

    - cosine: one half cosine from `lr` to `lr_min` over the whole run.
    - published (SpikingParrot's train.py): torch's CosineAnnealingLR with T_max = two epochs
      of steps, stepped every batch and never stopped, so over 12 epochs it goes down to
      `lr_min` and back up three times."""
    if config.lr_schedule == "published":
        frac = step / max(1, 2 * steps_per_epoch)
    else:
        span = max(1, total_steps)
        frac = min(step, span) / span
    return config.lr_min + (config.lr - config.lr_min) * (1 + math.cos(math.pi * frac)) / 2


def teacher_forcing_ratio(
    config: TranslatorConfig, epoch: int, step: int, total_steps: int, steps_per_epoch: int
) -> float:
    """The teacher-forcing probability at global optimizer step `step` (0-based) of `epoch`.

    - constant: tf_max.
    - linear: tf_max -> tf_min over the run.
    - published (SpikingParrot's train.py): epochs 0, n, 2n, ... (n = tf_full_every) use full
      teacher forcing; the other epochs follow tf_min + (tf_max - tf_min)(1 + cos(pi k / T))/2,
      where k counts the steps taken in those epochs only and T is one epoch's steps. The
      cosine is not clamped at T, so it climbs back to tf_max over the second such epoch.
    """
    if config.tf_schedule == "constant":
        return config.tf_max
    if config.tf_schedule == "linear":
        frac = step / max(1, total_steps - 1)
        return config.tf_max + (config.tf_min - config.tf_max) * min(frac, 1.0)
    n = config.tf_full_every
    if epoch % n == 0:
        return 1.0
    done_epochs = epoch - (epoch // n + 1)  # earlier epochs that were not full-TF ones
    k = done_epochs * steps_per_epoch + (step - epoch * steps_per_epoch)
    cos = math.cos(math.pi * k / max(1, steps_per_epoch))
    return config.tf_min + (config.tf_max - config.tf_min) * (1 + cos) / 2


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """A run record (config.json, train.json, metrics.json), written atomically; keys sorted and
    non-ASCII kept as is, so the sample translations stay readable."""
    atomic_write_json(path, obj, sort_keys=True, ensure_ascii=False)


def _save_checkpoint(obj: dict, path: Path) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


def _file_logger(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("nmt").addHandler(handler)
    logging.getLogger("nmt").setLevel(logging.INFO)
    return handler


def _loss_fn(config: TranslatorConfig) -> nn.Module:
    return nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=config.label_smoothing)


def _distill_term(
    distill: Distill,
    logits: torch.Tensor,
    src: torch.Tensor,
    src_len: torch.Tensor,
    tgt_in: torch.Tensor,
    tgt_out: torch.Tensor,
) -> torch.Tensor:
    """W * the distillation loss over the target positions that are not padding."""
    with torch.no_grad():
        t_logits = distill.teacher(src, src_len, tgt_in)
    keep = tgt_out.reshape(-1) != PAD
    vocab = logits.shape[-1]
    term = distillation_loss(
        logits.reshape(-1, vocab)[keep], t_logits.reshape(-1, vocab)[keep], distill.temperature
    )
    return distill.weight * term


def train(
    model: Translator,
    data: NMTData,
    config: TranslatorConfig,
    run_dir: str | os.PathLike,
    callback: Callable[[int, Translator], None] | None = None,
    resume: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    *,
    epochs: int | None = None,
    extra_state=None,
    lr_scale: float = 1.0,
    lr_at: Callable[[int], float] | None = None,
    distill: Distill | None = None,
    penalty: Callable[[], torch.Tensor | None] | None = None,
    label: str = "train",
) -> dict:
    """Train `model` in place; returns the training metrics (also in run_dir/train.json).

    `callback(step, model)` runs after every optimizer step (the compression passes hook in
    there). Checkpoints go to run_dir/checkpoint.pt every `checkpoint_every` steps, at every
    epoch end and on KeyboardInterrupt; `resume=True` continues from it (same batches, same
    random draws, so the result equals an uninterrupted run). `epochs` overrides
    `config.epochs` (fine-tuning), `lr_scale` scales the whole learning-rate schedule, and
    `extra_state` (anything with state_dict / load_state_dict, e.g. the compression masks) is
    saved in and restored from the checkpoint. `lr_at(step)` replaces the schedule (times
    lr_scale: the caller's); `distill` adds its term on the decoder's token distributions, the
    teacher teacher-forced on the same batch (with teacher forcing < 1 the student's prefixes
    may differ from the teacher's); `penalty()` is added to the loss when not None. Every epoch's
    validation loss is kept in the result's "valid". `progress` shows a bar named `label` over
    every step when stderr is a terminal (a log file would collect each of its redraws); the
    log has a line every `log_interval` steps and at every epoch end either way."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    handler = _file_logger(run_dir)
    writer = None
    try:
        if not (run_dir / "config.json").exists():  # a caller's own record (compress.run) wins
            write_json(run_dir / "config.json", config.to_dict())
        data.src_tok.save(run_dir / "tokenizers" / "en.json")
        data.tgt_tok.save(run_dir / "tokenizers" / "zh.json")
        model.to(device)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        ts = data.train
        steps_per_epoch = steps_per_epoch_of(config, data)
        n_epochs = config.epochs if epochs is None else epochs
        if n_epochs < 0 or lr_scale <= 0:
            raise ValueError(f"need epochs >= 0 and lr_scale > 0, got {n_epochs} and {lr_scale}")
        total_steps = n_epochs * steps_per_epoch
        if config.max_steps:
            total_steps = min(total_steps, config.max_steps)
        state = {"epoch": 0, "batch": 0, "step": 0, "train_time_s": 0.0, "tokens": 0}
        ckpt_path = run_dir / CHECKPOINT
        if resume and ckpt_path.is_file():
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["torch_rng"])
            if extra_state is not None and ckpt.get("extra") is not None:
                extra_state.load_state_dict(ckpt["extra"])
            if ckpt.get("config") != config.to_dict():
                log.warning("resuming with a config that differs from the checkpoint's")
            state = ckpt["state"]
            log.info("resumed from %s at step %d (epoch %d)", ckpt_path, state["step"],
                     state["epoch"])  # fmt: skip
        elif resume:
            log.info("no checkpoint in %s: starting from scratch", run_dir)

        def save() -> None:
            _save_checkpoint(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "state": dict(state),
                 "config": config.to_dict(),
                 "extra": None if extra_state is None else extra_state.state_dict()},
                ckpt_path,
            )  # fmt: skip

        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard hides what a killed run logged after the checkpoint (from its step + 1 on),
        # which this one logs again; the checkpoint's own step was logged before it was saved
        writer = SummaryWriter(str(run_dir), purge_step=state["step"] + 1)
        loss_fn = _loss_fn(config)
        model.train()
        log.info("training %s: %d params, %d steps/epoch, %d steps", config.preset,
                 sum(p.numel() for p in model.parameters()), steps_per_epoch, total_steps)  # fmt: skip
        bar = tqdm(total=total_steps, initial=state["step"], unit="step", desc=label,
                   disable=not (progress and sys.stderr.isatty()), dynamic_ncols=True)  # fmt: skip
        # while the bar is drawn, log lines go through tqdm.write, above it instead of inside it
        redirect = contextlib.nullcontext() if bar.disable else logging_redirect_tqdm()
        redirect.__enter__()
        started = time.perf_counter()
        recent: list[float] = []
        try:
            while state["step"] < total_steps and state["epoch"] < n_epochs:
                epoch = state["epoch"]
                batches = epoch_batches(config, data, epoch)
                while state["batch"] < len(batches) and state["step"] < total_steps:
                    t0 = time.perf_counter()
                    step = state["step"]
                    lr = (
                        lr_at(step)
                        if lr_at is not None
                        else lr_scale * learning_rate(config, step, total_steps, steps_per_epoch)
                    )
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    tf = teacher_forcing_ratio(config, epoch, step, total_steps, steps_per_epoch)
                    src, src_len, tgt_in, tgt_out = batch_tensors(ts.src, ts.tgt,
                                                                  batches[state["batch"]], device)  # fmt: skip
                    rng = np.random.default_rng([config.seed, 7, step])
                    logits = model(src, src_len, tgt_in, teacher_forcing=tf, rng=rng)
                    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
                    if distill is not None:
                        t1 = time.perf_counter()
                        loss = loss + _distill_term(distill, logits, src, src_len, tgt_in, tgt_out)
                        state["teacher_time_s"] = state.get("teacher_time_s", 0.0) + (
                            time.perf_counter() - t1
                        )
                    if penalty is not None and (extra := penalty()) is not None:
                        loss = loss + extra
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip) \
                        if config.clip > 0 else torch.tensor(0.0)  # fmt: skip
                    optimizer.step()
                    state["step"] += 1
                    state["batch"] += 1
                    tokens = int((tgt_out != PAD).sum()) + int(src_len.sum())
                    state["tokens"] += tokens
                    state["train_time_s"] += time.perf_counter() - t0
                    recent.append(float(loss.detach()))
                    if callback is not None:
                        callback(state["step"], model)
                    bar.update(1)
                    if state["step"] % config.log_interval == 0:
                        mean = sum(recent) / len(recent)
                        recent.clear()
                        writer.add_scalar("train/loss", mean, state["step"])
                        writer.add_scalar("train/lr", lr, state["step"])
                        writer.add_scalar("train/teacher_forcing", tf, state["step"])
                        writer.add_scalar("train/grad_norm", float(grad_norm), state["step"])
                        bar.set_postfix(loss=f"{mean:.3f}", lr=f"{lr:.2e}", tf=f"{tf:.2f}")
                        log.info("step %d epoch %d loss %.4f lr %.3e tf %.3f", state["step"],
                                 epoch, mean, lr, tf)  # fmt: skip
                    if state["step"] % config.checkpoint_every == 0:
                        save()
                if state["batch"] >= len(batches):
                    state["epoch"] += 1
                    state["batch"] = 0
                    vloss = pair_loss(model, data.valid.pair_src, data.valid.pair_tgt,
                                      config.eval_batch_size, device)  # fmt: skip
                    writer.add_scalar("valid/loss", vloss, state["step"])
                    state["valid_loss"] = vloss
                    state.setdefault("valid_history", []).append(
                        {"epoch": state["epoch"], "step": state["step"], "loss": vloss}
                    )
                    log.info("epoch %d done: valid loss %.4f (ppl %.2f)", state["epoch"], vloss,
                             math.exp(vloss))  # fmt: skip
                    save()
        except KeyboardInterrupt:
            save()
            raise
        finally:
            bar.close()
            redirect.__exit__(None, None, None)
        save()
        log.info("%s: %d steps in %.0f s of training steps (this process: %.0f s)", label,
                 state["step"], state["train_time_s"], time.perf_counter() - started)  # fmt: skip
        result = {
            "steps": state["step"],
            "epochs_done": state["epoch"] + state["batch"] / max(1, steps_per_epoch),
            "steps_per_epoch": steps_per_epoch,
            "train_time_s": state["train_time_s"],
            "tokens_per_s": state["tokens"] / max(state["train_time_s"], 1e-9),
            "params": sum(p.numel() for p in model.parameters()),
            "valid_loss": state.get("valid_loss"),
            "valid": list(state.get("valid_history", [])),
        }
        if distill is not None:
            result["teacher_time_s"] = state.get("teacher_time_s", 0.0)
        write_json(run_dir / "train.json", result)
        return result
    finally:
        if writer is not None:
            writer.close()
        logging.getLogger("nmt").removeHandler(handler)
        handler.close()
