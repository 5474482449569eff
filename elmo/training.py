"""Training the biLM: both directions' LM losses summed, one optimizer step per pair of windows,
gradient clipping, the lr schedule, and a resumable loop with checkpoints, TensorBoard scalars,
a progress bar on a terminal and a JSON record.

    model = build_model(cfg, data.vocab_size)
    train(model, data, cfg, run_dir)            # run_dir/checkpoint.pt, train.json, events

Step i trains the forward LM on window i of the forward streams and the backward LM on window i
of the backward streams (the reversed corpus, elmo.data), each from the LSTM state its previous
window left: the token encoder runs once over both windows, and the loss is the sum of the two
mean NLLs (full softmax, or the sampled one with cfg.sampled_softmax, its candidates drawn from
a generator seeded by (seed, step, direction)). States restart at every epoch.

A checkpoint (run_dir/checkpoint.pt: weights, optimizer, torch's RNG, the loop position, the
carried LSTM states and any `extra_state`, e.g. the compression pipeline's) is written every
`checkpoint_every` steps and at every epoch end; `resume=True` continues from it with the same
windows, states and random draws, so the run ends with the weights of an uninterrupted one.
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
from common.device import module_device
from common.distill import Distill, distillation_loss
from common.scalars import RunScalars
from elmo.config import ELMoConfig
from elmo.data import ELMoData, batchify, window, window_starts
from elmo.evaluation import perplexities, stream
from elmo.model import DIRECTIONS, BiLM, States, detach_states

__all__ = [
    "CHECKPOINT",
    "bilm_loss",
    "learning_rate",
    "steps_per_epoch",
    "total_steps",
    "train",
    "train_streams",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"

Batch = dict[str, tuple[torch.Tensor, torch.Tensor]]  # direction -> (inputs, targets), (T, B)


def train_streams(data: ELMoData, cfg: ELMoConfig) -> dict[str, torch.Tensor]:
    """direction -> its batchified training stream (rows, batch_size)."""
    return {d: batchify(stream(data.train, d), cfg.batch_size) for d in DIRECTIONS}


def steps_per_epoch(cfg: ELMoConfig, data: ELMoData) -> int:
    """Windows in one pass over the training streams (both directions have as many)."""
    rows = data.train.size(0) // cfg.batch_size
    if rows < 2:
        raise ValueError(f"{data.train.size(0)} training tokens are too few for batch_size "
                         f"{cfg.batch_size}")  # fmt: skip
    return len(range(0, rows - 1, cfg.bptt))


def total_steps(cfg: ELMoConfig, data: ELMoData, epochs: int) -> int:
    n = epochs * steps_per_epoch(cfg, data)
    return min(n, cfg.max_steps) if cfg.max_steps else n


def learning_rate(cfg: ELMoConfig, step: int, total: int) -> float:
    """The rate at optimizer step `step` (0-based) of `total`: constant, or a linear warm-up over
    warmup_steps and a half cosine from lr to lr_min over the run."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    frac = min(step, total) / max(1, total)
    lr = cfg.lr_min + (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac)) / 2
    if step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr


def make_optimizer(model: nn.Module, cfg: ELMoConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adagrad":  # bilm-tf's: Adagrad with accumulators starting at 1
        return torch.optim.Adagrad(params, lr=cfg.lr, initial_accumulator_value=1.0,
                                   weight_decay=cfg.weight_decay)  # fmt: skip
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def sampler(cfg: ELMoConfig, step: int, direction: str) -> np.random.Generator:
    """The sampled softmax's generator at `step` for `direction`: a function of the step alone,
    so a resumed run draws what an uninterrupted one drew."""
    return np.random.default_rng([cfg.seed, 11, step, DIRECTIONS.index(direction)])


def bilm_loss(
    model: BiLM,
    data: ELMoData,
    batch: Batch,
    states: dict[str, States | None],
    *,
    step: int = 0,
    distill: Distill | None = None,
    teacher_states: dict[str, States | None] | None = None,
) -> tuple[torch.Tensor, dict[str, float], dict[str, States], dict[str, States]]:
    """(loss, {direction: its mean NLL}, new states, new teacher states) of one step: the token
    encoder over both directions' windows at once, each stack from its carried state, the two
    losses summed, plus W * the distillation term of each direction with `distill` (its frozen
    teacher run on the same windows from its own carried states)."""
    xs = [batch[d][0] for d in DIRECTIONS]
    emb = model.encoder(data.char_ids(torch.cat(xs, dim=1)))
    parts = emb.split([x.size(1) for x in xs], dim=1)
    loss = emb.new_zeros(())
    nll: dict[str, float] = {}
    new_states: dict[str, States] = {}
    new_teacher: dict[str, States] = {}
    cfg: ELMoConfig = model.cfg
    for d, x_d in zip(DIRECTIONS, parts):
        out, new_states[d] = model.run(d, x_d, states.get(d))
        targets = batch[d][1]
        term = model.nll(out, targets, rng=sampler(cfg, step, d) if cfg.sampled_softmax else None)
        nll[d] = float(term.detach())
        loss = loss + term
        if distill is not None:
            teacher: BiLM = distill.teacher  # type: ignore[assignment]
            with torch.no_grad():
                t_emb = teacher.encoder(data.char_ids(batch[d][0]))
                t_out, new_teacher[d] = teacher.run(d, t_emb, (teacher_states or {}).get(d))
                t_logits = teacher.logits(t_out)
            s_logits = model.logits(out)
            kl = distillation_loss(s_logits.reshape(-1, s_logits.size(-1)),
                                   t_logits.reshape(-1, t_logits.size(-1)), distill.temperature)  # fmt: skip
            loss = loss + distill.weight * kl
    return loss, nll, new_states, new_teacher


def _detached(states: dict[str, States]) -> dict[str, States]:
    return {d: detach_states(s) for d, s in states.items()}


def train(
    model: BiLM,
    data: ELMoData,
    cfg: ELMoConfig,
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
) -> dict[str, Any]:
    """Train `model` in place, where it is, for `epochs` (default cfg.epochs) epochs, at most
    cfg.max_steps steps; returns the record also written to run_dir/train.json.

    `callback(i)` runs after every optimizer step, `i` its 0-based index (the compression passes'
    events fire there). `lr_scale` scales the schedule, `distill` adds its term, `penalty()` is
    added to the loss when not None. The record's "valid" lists every epoch's validation
    perplexities (forward, backward, mean)."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    n_epochs = cfg.epochs if epochs is None else epochs
    if n_epochs < 0 or not lr_scale > 0:
        raise ValueError(f"need epochs >= 0 and lr_scale > 0, got {n_epochs} and {lr_scale}")
    device = module_device(model)
    streams = {d: s.to(device) for d, s in train_streams(data, cfg).items()}
    starts = window_starts(streams["fwd"], cfg.bptt)
    opt = make_optimizer(model, cfg)
    per_epoch = steps_per_epoch(cfg, data)
    total = total_steps(cfg, data, n_epochs)
    state: dict[str, Any] = {"epoch": 0, "window": 0, "step": 0, "train_time_s": 0.0,
                             "tokens": 0, "valid": []}  # fmt: skip
    states: dict[str, Any] = {}
    teacher_states: dict[str, Any] = {}
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
        state, states = ckpt["state"], ckpt["states"]
        teacher_states = ckpt.get("teacher_states") or {}
        log.info("resumed %s at step %d (epoch %d)", run_dir, state["step"], state["epoch"])
    else:
        torch.manual_seed(cfg.seed + 1)  # the dropout stream

    def save() -> None:
        obj = {"model": model.state_dict(), "optimizer": opt.state_dict(),
               "torch_rng": torch.get_rng_state(), "state": dict(state), "states": states,
               "teacher_states": teacher_states, "config": cfg.to_dict(),
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
    recent: dict[str, list[float]] = {d: [] for d in DIRECTIONS}
    try:
        with redirect:
            while state["step"] < total and state["epoch"] < n_epochs:
                while state["window"] < len(starts) and state["step"] < total:
                    t0 = time.perf_counter()
                    step = state["step"]
                    lr = lr_scale * learning_rate(cfg, step, total)
                    for group in opt.param_groups:
                        group["lr"] = lr
                    start = starts[state["window"]]
                    batch = {d: window(streams[d], start, cfg.bptt) for d in DIRECTIONS}
                    loss, nll, new_states, new_teacher = bilm_loss(
                        model, data, batch, states, step=step, distill=distill,
                        teacher_states=teacher_states,
                    )  # fmt: skip
                    if penalty is not None and (extra := penalty()) is not None:
                        loss = loss + extra
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.clip > 0:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                    opt.step()
                    states, teacher_states = _detached(new_states), _detached(new_teacher)
                    state["step"] += 1
                    state["window"] += 1
                    state["tokens"] += sum(b[1].numel() for b in batch.values())
                    state["train_time_s"] += time.perf_counter() - t0
                    for d in DIRECTIONS:
                        recent[d].append(nll[d])
                    if callback is not None:
                        callback(step)
                    bar.update(1)
                    if state["step"] % cfg.log_interval == 0:
                        mean = {d: sum(v) / len(v) for d, v in recent.items()}
                        for v in recent.values():
                            v.clear()
                        _log_step(scalars, bar, state, mean, lr)
                    if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                        save()
                if state["window"] >= len(starts):
                    state["epoch"] += 1
                    state["window"] = 0
                    states, teacher_states = {}, {}  # each epoch starts from zero states
                    v = perplexities(model, data, data.valid, cfg)
                    model.train()
                    for key in ("ppl", "ppl_forward", "ppl_backward"):
                        scalars.add(f"valid/{key}", v[key], state["step"])
                    state["valid"].append({"epoch": state["epoch"], "step": state["step"], **v})
                    log.info("epoch %d: valid ppl forward %.2f backward %.2f mean %.2f",
                             state["epoch"], v["ppl_forward"], v["ppl_backward"], v["ppl"])  # fmt: skip
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
        "epochs_done": state["epoch"] + state["window"] / max(1, per_epoch),
        "steps_per_epoch": per_epoch,
        "train_time_s": state["train_time_s"],
        "tokens_per_s": state["tokens"] / max(state["train_time_s"], 1e-9),
        "params": sum(p.numel() for p in model.parameters()),
        "valid": [dict(v) for v in state["valid"]],
    }
    atomic_write_json(run_dir / "train.json", result, sort_keys=True)
    return result


def _log_step(scalars: RunScalars, bar: Any, state: dict[str, Any], mean: dict[str, float],
              lr: float) -> None:  # fmt: skip
    step = state["step"]
    total = sum(mean.values())
    scalars.add("train/loss", total, step)
    scalars.add("train/loss_forward", mean["fwd"], step)
    scalars.add("train/loss_backward", mean["bwd"], step)
    scalars.add("train/lr", lr, step)
    bar.set_postfix(fwd=f"{mean['fwd']:.3f}", bwd=f"{mean['bwd']:.3f}", lr=f"{lr:.2e}")
    log.info("step %d epoch %d loss forward %.4f backward %.4f lr %.3e", step, state["epoch"],
             mean["fwd"], mean["bwd"], lr)  # fmt: skip
