"""Training the translator: the model from its config, the lr and teacher-forcing schedules, and
the resumable training loop with its checkpoints and run records.

    model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    train(model, data, config, run_dir, callback=None, resume=False)

Checkpoints (run_dir/checkpoint.pt) hold the weights, the optimizer, torch's RNG (the CPU's and,
on a GPU, the CUDA one) and the loop's position, so a run resumed with `resume=True` ends with the
same weights as an uninterrupted one; a checkpoint resumes on another device too.

`precision` "bf16" / "fp16" runs the training forward passes under autocast (fp16 with loss
scaling); validation stays fp32. Under a torchrun process group (common.distributed) the ranks
train one model data-parallel: each takes a contiguous part of every global batch (the batches
are the preset's, whatever the number of ranks), its loss is its share of the global batch's
summed token loss over the global batch's target tokens (times the ranks, which DDP's gradient
mean divides out), so an update is one process's on the same batch; a rank whose part of a batch
is empty runs one pair of it at weight 0, since DDP needs every rank's backward pass. Each rank
draws its own dropout masks (the torch generator reseeded per step from the seed, the step and
the rank, so that a resumed run draws the same ones); teacher forcing's per-step coin flips are
the same on every rank. Only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common import distributed
from common.atomic import atomic_write, atomic_write_json, remove_stale_temps
from common.device import Amp, check_resumed_precision, restore_rng, rng_state
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
    if not distributed.is_main():  # rank 0 keeps the log
        return logging.NullHandler()
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("nmt").addHandler(handler)
    logging.getLogger("nmt").setLevel(logging.INFO)
    return handler


def _loss_fn(config: TranslatorConfig, reduction: str = "mean") -> nn.Module:
    return nn.CrossEntropyLoss(
        ignore_index=PAD, label_smoothing=config.label_smoothing, reduction=reduction
    )


def _target_tokens(tgt: Sequence[Sequence[int]], index: np.ndarray) -> int:
    """Target tokens the loss scores for the pairs at `index`: each target but its BOS."""
    return sum(len(tgt[i]) - 1 for i in index)


def _dropout_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of a data-parallel rank at `step`: its own masks, the same on resume."""
    return int(np.random.SeedSequence([seed, 13, step, rank]).generate_state(1)[0])


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
    precision: str = "fp32",
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
    log has a line every `log_interval` steps and at every epoch end either way. `callback`
    returning True says it changed the model (a compression event): data-parallel ranks then
    take rank 0's parameters and buffers. `precision` and data parallelism: the module
    docstring."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    run_dir = Path(run_dir)
    world = distributed.current()
    main = world.main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(run_dir)  # what a write cut off by a kill left; rank 0 alone writes
    handler = _file_logger(run_dir)
    writer = None
    try:
        if main and not (run_dir / "config.json").exists():  # a caller's record (compress.run) wins
            write_json(run_dir / "config.json", config.to_dict())
        if main:
            data.src_tok.save(run_dir / "tokenizers" / "en.json")
            data.tgt_tok.save(run_dir / "tokenizers" / "zh.json")
        model.to(device)
        amp = Amp(precision, device)
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
            # on the CPU: the RNG states must be CPU tensors, and the optimizer's state follows
            # its parameters to their device on loading
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            check_resumed_precision(ckpt.get("precision"), precision, f"the run in {run_dir}")
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            amp.load_state_dict(ckpt)
            restore_rng(ckpt, device, seed=config.seed + int(ckpt["state"]["step"]))
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
            if not main:  # every rank holds the same weights and optimizer state
                return
            _save_checkpoint(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 **rng_state(device), "state": dict(state), "config": config.to_dict(),
                 "precision": precision, **amp.state_dict(),
                 "extra": None if extra_state is None else extra_state.state_dict()},
                ckpt_path,
            )  # fmt: skip

        from torch.utils.tensorboard import SummaryWriter

        # TensorBoard hides what a killed run logged after the checkpoint (from its step + 1 on),
        # which this one logs again; the checkpoint's own step was logged before it was saved
        writer = SummaryWriter(str(run_dir), purge_step=state["step"] + 1) if main else None
        loss_fn = _loss_fn(config)
        loss_sum = _loss_fn(config, "sum")
        # DDP when data-parallel, else the model; the encoder's last stack layer has spike
        # parameters (threshold, surrogate) its outputs never use
        net = distributed.wrap(model, device, unused=True)
        model.train()
        log.info("training %s: %d params, %d steps/epoch, %d steps", config.preset,
                 sum(p.numel() for p in model.parameters()), steps_per_epoch, total_steps)  # fmt: skip
        bar = tqdm(total=total_steps, initial=state["step"], unit="step", desc=label,
                   disable=not (progress and main and sys.stderr.isatty()),
                   dynamic_ncols=True)  # fmt: skip
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
                    batch = batches[state["batch"]]
                    part, weight = batch, 1.0
                    if world.parallel:
                        part = distributed.split(batch, world)
                        if len(part) == 0:  # DDP needs this rank's backward pass all the same
                            part, weight = batch[:1], 0.0
                        torch.manual_seed(_dropout_seed(config.seed, step, world.rank))
                    src, src_len, tgt_in, tgt_out = batch_tensors(ts.src, ts.tgt, part, device)
                    rng = np.random.default_rng([config.seed, 7, step])
                    with amp.autocast():
                        logits = net(src, src_len, tgt_in, teacher_forcing=tf, rng=rng)
                        flat = logits.reshape(-1, logits.shape[-1])
                        if world.parallel:
                            # this rank's share of the global batch's mean: its summed token
                            # loss over all the batch's target tokens, times the ranks (DDP's
                            # gradient mean divides them out)
                            scale = weight * world.size / _target_tokens(ts.tgt, batch)
                            n_here = int((tgt_out != PAD).sum())
                            loss = scale * loss_sum(flat, tgt_out.reshape(-1))
                        else:
                            loss = loss_fn(flat, tgt_out.reshape(-1))
                        if distill is not None:
                            t1 = time.perf_counter()
                            term = _distill_term(distill, logits, src, src_len, tgt_in, tgt_out)
                            # the term is a mean over this rank's tokens: weigh it by them
                            loss = loss + (term * scale * n_here if world.parallel else term)
                            state["teacher_time_s"] = state.get("teacher_time_s", 0.0) + (
                                time.perf_counter() - t1
                            )
                        if penalty is not None and (extra := penalty()) is not None:
                            loss = loss + extra
                    optimizer.zero_grad(set_to_none=True)
                    amp.backward(loss)
                    if config.clip > 0:
                        amp.unscale(optimizer)
                        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                    else:
                        grad_norm = torch.tensor(0.0)
                    amp.step(optimizer)
                    state["step"] += 1
                    state["batch"] += 1
                    # the global batch's tokens (every rank has them all) and mean loss
                    tokens = _target_tokens(ts.tgt, batch) + sum(len(ts.src[i]) for i in batch)
                    state["tokens"] += tokens
                    state["train_time_s"] += time.perf_counter() - t0
                    recent.append(float(distributed.all_mean(loss.float())))
                    if callback is not None and callback(state["step"], model):
                        distributed.broadcast_module(model)  # rank 0's event, on every rank
                    bar.update(1)
                    if state["step"] % config.log_interval == 0:
                        mean = sum(recent) / len(recent)
                        recent.clear()
                        if writer is not None:
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
                    if writer is not None:
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
        result.update(device=str(torch.device(device)), precision=precision,
                      processes=world.size)  # fmt: skip
        if main:
            write_json(run_dir / "train.json", result)
        distributed.barrier()  # the ranks leave training together, the checkpoint written
        return result
    finally:
        if writer is not None:
            writer.close()
        logging.getLogger("nmt").removeHandler(handler)
        handler.close()
