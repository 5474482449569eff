"""The AWD-LSTM training loop and evaluation, free of any run directory.

- `evaluate(model, data, config, batch_size=...)` -> mean NLL per target token (nats).
- `Trainer(model, corpus, config, step_callback=...)`: `run_epoch()` trains one epoch (calling
  `step_callback(trainer)` after every optimizer step), validates, and applies the NT-ASGD switch
  or the `when` lr drops (or sets every step's lr from the cosine schedule, `scheduled_lr`, or
  from `lr_at`); `state_dict()` / `load_state_dict()` capture everything a resume needs. A
  fine-tune may add a distillation term (`distill`: a frozen teacher run on the same batches with
  its own hidden state) and a `penalty` (the L1 on the compressed weights) to the loss.
- Progress (`progress=True`): on a terminal one tqdm bar over the whole stage (every epoch, with
  an ETA, the loss and tokens per second); elsewhere nothing per step, the caller logging a line
  per epoch, since a log file would collect every carriage-return redraw of a bar.

- Device and precision: the trainer moves the model to `device`; `precision` "bf16" or "fp16"
  runs the training forward passes under autocast (fp16 with a GradScaler, whose state rides in
  the checkpoint); validation stays fp32. Checkpoints hold the CPU and, on a GPU, the CUDA
  random state, and a checkpoint resumes on another device.
- Data parallelism: when a torchrun process group is started (common.distributed) each rank
  trains on its share of the `batch_size` columns of the batchified stream (the global batch
  stays the config's), its locked dropout drawing the global batch's masks (lm.model), through
  DistributedDataParallel: the same updates as one process with the same batch. The losses the
  trainer reports are the mean over ranks; a step callback that returns True (it changed the
  model: a compression event) is followed by a broadcast of rank 0's parameters and buffers;
  only rank 0 draws the bar and writes TensorBoard. Every rank validates on the whole split.

lm.rundir drives a Trainer through a whole run with checkpoints; lm.spec drives one through a
compressed model's fine-tune.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common import distributed
from common.device import Amp, check_resumed_precision, restore_rng, rng_state
from common.distill import Distill, distillation_loss
from lm.config import LMConfig
from lm.data import Corpus, batchify, get_batch, sample_seq_len
from lm.model import AWDLSTM, detach_hidden
from lm.regularizers import activation_regularization, temporal_activation_regularization

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


def nll_to_metric(nll: float, metric: str) -> float:
    """Mean NLL in nats -> bits per character ("bpc") or perplexity ("ppl")."""
    if metric == "bpc":
        return nll / math.log(2)
    if metric == "ppl":
        return math.exp(nll) if nll < 700 else math.inf
    raise ValueError(f"metric must be 'bpc' or 'ppl', got {metric!r}")


@torch.no_grad()
def evaluate(
    model: AWDLSTM,
    data: torch.Tensor,
    config: LMConfig,
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """Mean NLL (nats) over every next-token target of the 1-D stream `data`, read as
    `batch_size` parallel streams in chunks of `config.bptt` with the hidden state carried over,
    as the published evaluation does (it uses batch 10 for valid, 1 for test). The mean is exact
    over the targets scored (the published code divides by the row count instead, a <0.1%
    difference)."""
    batch_size = batch_size or config.eval_batch_size
    source = batchify(data, batch_size).to(device)
    was_training = model.training
    model.eval()
    try:
        hidden = model.init_hidden(batch_size)
        total, count = 0.0, 0
        for i in range(0, source.size(0) - 1, config.bptt):
            x, y = get_batch(source, i, config.bptt)
            out = model(x, hidden)
            total += model.nll(out.output, y, reduction="sum").item()
            count += y.numel()
            hidden = out.hidden
    finally:
        model.train(was_training)
    return total / count


def scheduled_lr(config: LMConfig, step: int, progress: float) -> float:
    """The cosine schedule's learning rate for the optimizer step `step` (0-based, over the whole
    run) taken at `progress` in [0, 1] of the run: linear warm-up over `warmup_steps`, then a
    half cosine from `lr` to `lr_min`."""
    p = min(max(progress, 0.0), 1.0)
    lr = config.lr_min + (config.lr - config.lr_min) * 0.5 * (1.0 + math.cos(math.pi * p))
    if step < config.warmup_steps:
        lr *= (step + 1) / config.warmup_steps
    return lr


def dense_lr(config: LMConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate a run of `config` uses at its optimizer step `step` (0-based) of
    `total_steps`, before the per-batch BPTT-length scaling: the cosine schedule at progress
    step / total_steps (exact for step-limited epochs, as `Trainer._progress` counts steps there;
    an estimate otherwise, where progress runs in training rows), or the step schedule's rate
    after the `when` drops of the epochs before the step's. NT-ASGD keeps the rate it switches
    at, so the step schedule's value holds for it too."""
    if config.lr_schedule == "cosine":
        return scheduled_lr(config, step, step / max(total_steps, 1))
    epoch = step // max(steps_per_epoch, 1)  # 0-based; a drop follows the end of epoch w
    return config.lr * 0.1 ** sum(1 for w in config.when if w <= epoch)


def limit_tokens(data: torch.Tensor, n: int) -> torch.Tensor:
    """The first `n` tokens of a split (the configs' train_tokens / eval_tokens); 0: all."""
    return data[:n] if n else data


def make_optimizer(params: list[nn.Parameter], config: LMConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.wdecay)
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.wdecay)


def _asgd(params: list[nn.Parameter], config: LMConfig) -> torch.optim.Optimizer:
    return torch.optim.ASGD(params, lr=config.lr, t0=0, lambd=0.0, weight_decay=config.wdecay)


# called after every optimizer step; returning True says it changed the model (a compression
# event), which data-parallel training then broadcasts from rank 0
StepCallback = Callable[["Trainer"], object]


def on_terminal() -> bool:
    """Whether a progress bar can redraw in place: stderr is a terminal. Written to a file or a
    pipe, every carriage-return redraw of a bar would pile up in it."""
    return sys.stderr.isatty()


def estimated_steps_per_epoch(config: LMConfig, train_rows: int) -> int:
    """Optimizer steps in one epoch over `train_rows` batched rows: exact when epochs are
    step-limited, else estimated from the mean BPTT length (sample_seq_len draws bptt with
    probability 0.95, bptt / 2 otherwise)."""
    if config.max_steps_per_epoch > 0:
        return config.max_steps_per_epoch
    mean_len = 0.95 * config.bptt + 0.05 * config.bptt / 2
    return max(1, int(train_rows / max(mean_len, 5)))


class StageBar:
    """One tqdm bar over every optimizer step of a stage (all its epochs), so its ETA is the
    stage's; log records go through tqdm.write meanwhile, so a line logged between two redraws
    does not land in the middle of the bar."""

    def __init__(self, label: str, total: int, initial: int) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._redirect = logging_redirect_tqdm()
        self._redirect.__enter__()
        self.bar = tqdm(total=max(total, initial), initial=initial, desc=label, unit="step",
                        dynamic_ncols=True, leave=True)  # fmt: skip
        self._loss: float | None = None
        # (time, tokens) of the last steps: the rate over a window follows the current speed
        # (a pruning event or a validation only slows the steps around it)
        self._recent: collections.deque[tuple[float, int]] = collections.deque(maxlen=50)

    def step(self, loss: float, tokens: int) -> None:
        # an exponential mean: one step's loss on a random window is too noisy to read
        self._loss = loss if self._loss is None else 0.95 * self._loss + 0.05 * loss
        self._recent.append((time.perf_counter(), tokens))
        postfix = {"loss": f"{self._loss:.3f}"}
        if len(self._recent) > 1:
            span = self._recent[-1][0] - self._recent[0][0]
            done = sum(n for _, n in list(self._recent)[1:])
            postfix["tok/s"] = f"{done / max(span, 1e-9):.0f}"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def restart_rate(self) -> None:
        """Forget the window of step times: a validation lies between an epoch and the next."""
        self._recent.clear()

    def retotal(self, total: int) -> None:
        """A better estimate of the stage's steps (epochs of random BPTT lengths are not exact)."""
        self.bar.total = max(total, self.bar.n)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
        self._redirect.__exit__(None, None, None)


class Trainer:
    """Trains `model` on `corpus.train` with the published AWD-LSTM loop.

    The optimizer covers the model's parameters at construction time; a parametrization registered
    afterwards keeps training because it keeps the same Parameter object as `original`.
    """

    def __init__(
        self,
        model: AWDLSTM,
        corpus: Corpus,
        config: LMConfig,
        *,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        step_callback: StepCallback | None = None,
        writer: Any = None,
        progress: bool = False,
        distill: Distill | None = None,
        penalty: Callable[[], torch.Tensor | None] | None = None,
        lr_at: Callable[[int], float] | None = None,
        label: str = "train",
    ) -> None:
        """`lr_at(step)` (0-based over this run) overrides the config's schedule; `distill` adds
        its weighted term on every batch (its teacher on `device`); `penalty()` is added to the
        loss when not None; `progress` shows the stage's bar, named `label`, when stderr is a
        terminal. Under a started process group the model trains data-parallel (module
        docstring); `writer` and the bar are rank 0's only."""
        self.model, self.config, self.device = model, config, torch.device(device)
        self.world = distributed.current()
        self.precision = precision
        self.amp = Amp(precision, self.device)
        self.step_callback, self.progress = step_callback, progress
        self.writer = writer if self.world.main else None
        self.label = label
        self._stage_bar: StageBar | None = None
        self.distill, self.penalty, self.lr_at = distill, penalty, lr_at
        self.teacher_time_s = 0.0  # the distillation's teacher forward passes, within train_time_s
        model.to(self.device)
        # this rank's columns of the batchified stream: each column is a contiguous slice of the
        # data, so the ranks' columns together are exactly one process's batch
        cols = distributed.share(config.batch_size, self.world)
        self.batch_size = cols.stop - cols.start
        stream = batchify(limit_tokens(corpus.train, config.train_tokens), config.batch_size)
        self.train_data = stream[:, cols].contiguous().to(self.device)
        if self.world.parallel:
            model.share_batch(cols.start, config.batch_size)
        self.net = distributed.wrap(model, self.device)  # the model itself for one process
        self.valid = limit_tokens(corpus.valid, config.eval_tokens)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.params, config)
        self.asgd = False
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps over the whole run
        self.epoch_step = 0
        self.position = 0  # next training row when epochs are step-limited
        self.val_history: list[float] = []  # non-averaged validation losses, for the switch
        self.best_val = math.inf
        self.train_time_s = 0.0
        self.train_tokens_seen = 0
        self.last_loss = math.nan  # the last step's training NLL (the mean over ranks)

    # -- one epoch ------------------------------------------------------------------------------
    def train_epoch(self) -> float:
        """One pass over the training stream (or `max_steps_per_epoch` steps); returns the mean
        raw training NLL. Raises TrainingDivergedError on a NaN/inf loss."""
        cfg, model, opt = self.config, self.model, self.optimizer
        model.train()
        # A generator per (seed, epoch) makes the sequence lengths of an epoch independent of
        # anything before it, so a resumed run draws the same ones.
        rng = np.random.default_rng([cfg.seed, self.epoch])
        hidden = model.init_hidden(self.batch_size)
        # the teacher carries its own hidden state through the stream, reset where the student's is
        t_hidden = self._teacher_hidden()
        data = self.train_data
        nrows = data.size(0)
        limited = cfg.max_steps_per_epoch > 0
        # A step-limited epoch continues the stream where the previous one stopped (wrapping at
        # the end), so short epochs still walk through all of the training data.
        i = self.position if limited else 0
        total_loss, nsteps = 0.0, 0
        self.epoch_step = 0
        bar = self._bar()
        if bar is not None:
            bar.restart_rate()
        logged: list[float] = []  # raw losses since the last TensorBoard point
        t0 = time.perf_counter()
        try:
            while True:
                if limited and nsteps >= cfg.max_steps_per_epoch:
                    break
                if i >= nrows - 2:
                    if not limited:
                        break
                    i = 0
                    hidden = model.init_hidden(self.batch_size)
                    t_hidden = self._teacher_hidden()
                seq_len = sample_seq_len(rng, cfg.bptt)
                x, y = get_batch(data, i, seq_len)
                if self.lr_at is not None:
                    opt.param_groups[0]["lr"] = self.lr_at(self.step)
                elif cfg.lr_schedule == "cosine":
                    opt.param_groups[0]["lr"] = scheduled_lr(cfg, self.step, self._progress(i))
                base_lr = opt.param_groups[0]["lr"]
                opt.param_groups[0]["lr"] = base_lr * seq_len / cfg.bptt
                hidden = detach_hidden(hidden)
                opt.zero_grad(set_to_none=True)
                with self.amp.autocast():
                    out = self.net(x, hidden)  # through DDP when data-parallel
                    hidden = out.hidden
                    if self.distill is None:
                        raw_loss = model.nll(out.output, y)
                        loss = raw_loss
                    else:
                        raw_loss, loss, t_hidden = self._distilled_loss(x, y, out, t_hidden)
                    if self.penalty is not None:
                        extra = self.penalty()
                        if extra is not None:
                            loss = loss + extra
                    if cfg.alpha:
                        loss = loss + activation_regularization(out.dropped_outputs[-1], cfg.alpha)
                    if cfg.beta:
                        loss = loss + temporal_activation_regularization(
                            out.raw_outputs[-1], cfg.beta
                        )
                # every rank's share is as large, so the global batch's losses are the mean of
                # the ranks' (and a NaN on one rank stops them all at the same step)
                value, total = distributed.all_mean(
                    torch.stack([raw_loss.detach().float(), loss.detach().float()])
                ).tolist()
                if not math.isfinite(value) or not math.isfinite(total):
                    opt.param_groups[0]["lr"] = base_lr
                    raise TrainingDivergedError(
                        f"training loss is {value} at epoch {self.epoch + 1}, step "
                        f"{nsteps + 1} of the epoch (global step {self.step + 1})"
                    )
                self.amp.backward(loss)
                if cfg.clip:
                    self.amp.unscale(opt)
                    nn.utils.clip_grad_norm_(self.params, cfg.clip)
                self.amp.step(opt)
                opt.param_groups[0]["lr"] = base_lr
                self.step += 1
                nsteps += 1
                self.epoch_step = nsteps
                total_loss += value
                self.last_loss = value  # the global batch's NLL, for the step callback
                ntok = y.numel() * self.world.size  # the global batch's tokens
                self.train_tokens_seen += ntok
                i += seq_len
                if bar is not None:
                    bar.step(value, ntok)
                logged.append(value)
                if self.writer is not None and self.step % cfg.log_interval == 0:
                    # the mean over the interval: a single step's loss is mostly noise
                    self.writer.add_scalar("train/loss", sum(logged) / len(logged), self.step)
                    self.writer.add_scalar("train/lr", base_lr, self.step)
                    logged.clear()
                if self.step_callback is not None and self.step_callback(self):
                    # the model changed outside the optimizer: every rank takes rank 0's
                    distributed.broadcast_module(model)
        except BaseException:
            self.close_progress()  # the caller's error message must not land inside the bar
            raise
        finally:
            self.position = i if limited else 0
            self.train_time_s += time.perf_counter() - t0
        return total_loss / max(nsteps, 1)

    def _teacher_hidden(self) -> Any:
        if self.distill is None:
            return None
        return self.distill.teacher.init_hidden(self.batch_size)

    def _distilled_loss(
        self, x: torch.Tensor, y: torch.Tensor, out: Any, t_hidden: Any
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(raw NLL, NLL + W * distillation term, the teacher's next hidden state). The NLL is
        the one `model.nll` computes, from the same logits the term uses."""
        d, model = self.distill, self.model
        t0 = time.perf_counter()
        with torch.no_grad():
            t_out = d.teacher(x, t_hidden)
            t_logits = d.teacher.decoder(t_out.output.reshape(-1, t_out.output.size(-1)))
        self.teacher_time_s += time.perf_counter() - t0
        logits = model.decoder(out.output.reshape(-1, out.output.size(-1)))
        raw_loss = F.cross_entropy(logits, y.reshape(-1))
        term = distillation_loss(logits, t_logits, d.temperature)
        return raw_loss, raw_loss + d.weight * term, t_out.hidden

    def _progress(self, row: int) -> float:
        """How far through the run the next step is: in steps when epochs are step-limited (the
        step count is exact), else in training rows (sequence lengths are random)."""
        cfg = self.config
        if cfg.max_steps_per_epoch > 0:
            return self.step / max(cfg.epochs * cfg.max_steps_per_epoch, 1)
        return (self.epoch + row / max(self.train_data.size(0), 1)) / max(cfg.epochs, 1)

    def stage_steps(self) -> int:
        """Optimizer steps of the whole run (all `config.epochs`), estimated where epochs are
        not step-limited: the steps so far plus the remaining epochs at the last epoch's rate."""
        cfg = self.config
        per_epoch = estimated_steps_per_epoch(cfg, self.train_data.size(0))
        if cfg.max_steps_per_epoch <= 0 and self.epoch > 0:
            per_epoch = max(1, round(self.step / self.epoch))
        return self.step + max(cfg.epochs - self.epoch, 0) * per_epoch

    def _bar(self) -> StageBar | None:
        """The stage's bar, opened at the first epoch this process trains (its `initial` the
        resumed step) and kept across epochs; None off a terminal or without `progress`."""
        if self._stage_bar is None and self.progress and self.world.main and on_terminal():
            self._stage_bar = StageBar(self.label, self.stage_steps(), self.step)
        return self._stage_bar

    def close_progress(self) -> None:
        """Close the stage's bar, if any (at the last epoch, on an error, by the caller)."""
        if self._stage_bar is not None:
            self._stage_bar.close()
            self._stage_bar = None

    def keep_averaged_weights(self) -> None:
        """Copy ASGD's averaged parameters into the model for good (a no-op before the NT-ASGD
        switch): the published evaluation scores the averages, not the last iterate."""
        if not self.asgd:
            return
        with torch.no_grad():
            for p in self.params:
                ax = self.optimizer.state[p].get("ax")
                if ax is not None:
                    p.copy_(ax)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Swap in ASGD's averaged parameters (a no-op before the NT-ASGD switch)."""
        if not self.asgd:
            yield
            return
        saved = [p.detach().clone() for p in self.params]
        self.keep_averaged_weights()
        try:
            yield
        finally:
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)

    def validate(self) -> float:
        with self.averaged_weights():
            return evaluate(self.model, self.valid, self.config, device=self.device)

    def run_epoch(self) -> dict[str, float]:
        """Train one epoch, validate (with averaged weights under ASGD), update the schedule.
        Returns {"train_loss", "val_loss", "improved"}."""
        cfg = self.config
        train_loss = self.train_epoch()
        val_loss = self.validate()
        self.epoch += 1
        improved = val_loss < self.best_val
        if improved:
            self.best_val = val_loss
        if not self.asgd:
            # The published NT-ASGD rule: switch when the loss is worse than the best of all but
            # the last `nonmono` epochs.
            hist = self.val_history
            if (
                cfg.optimizer == "sgd"
                and len(hist) > cfg.nonmono
                and val_loss > min(hist[: -cfg.nonmono] if cfg.nonmono else hist)
            ):
                log.info("epoch %d: switching to ASGD", self.epoch)
                self.optimizer = _asgd(self.params, cfg)
                self.asgd = True
            if cfg.lr_schedule == "step" and self.epoch in cfg.when:
                log.info("epoch %d: dividing the learning rate by 10", self.epoch)
                self.optimizer.param_groups[0]["lr"] /= 10.0
            hist.append(val_loss)
        if self._stage_bar is not None:
            if self.epoch >= cfg.epochs:
                self.close_progress()
            else:
                self._stage_bar.retotal(self.stage_steps())
        if self.writer is not None:
            # on the step axis, as train/loss: the curves line up, and a resumed run's TensorBoard
            # purge (from the checkpoint's step on) covers these too
            step = self.step
            self.writer.add_scalar(f"valid/{cfg.metric}", nll_to_metric(val_loss, cfg.metric), step)
            self.writer.add_scalar("valid/loss", val_loss, step)
            self.writer.add_scalar("train/epoch_loss", train_loss, step)
            self.writer.add_scalar("lr", self.optimizer.param_groups[0]["lr"], step)
            self.writer.add_scalar("nonzero_weights", nonzero_weights(self.model), step)
        return {"train_loss": train_loss, "val_loss": val_loss, "improved": float(improved)}

    # -- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        extra = {} if self.distill is None else {"teacher_time_s": self.teacher_time_s}
        return {
            **extra,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_kind": "asgd" if self.asgd else self.config.optimizer,
            "epoch": self.epoch,
            "step": self.step,
            "position": self.position,
            "val_history": list(self.val_history),
            "best_val": self.best_val,
            "train_time_s": self.train_time_s,
            "train_tokens_seen": self.train_tokens_seen,
            "precision": self.precision,
            **self.amp.state_dict(),
            # under data parallelism every rank's stream is the same (lm.model): rank 0's is all
            **rng_state(self.device),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`'s checkpoint, made on this device or another;
        ValueError when it trained in another precision."""
        check_resumed_precision(state.get("precision"), self.precision, "the checkpoint")
        self.model.load_state_dict(state["model"])
        self.asgd = state["optimizer_kind"] == "asgd"
        self.optimizer = (
            _asgd(self.params, self.config)
            if self.asgd
            else make_optimizer(self.params, self.config)
        )
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.position = int(state["position"])
        self.val_history = [float(v) for v in state["val_history"]]
        self.best_val = float(state["best_val"])
        self.train_time_s = float(state["train_time_s"])
        self.train_tokens_seen = int(state["train_tokens_seen"])
        self.teacher_time_s = float(state.get("teacher_time_s", 0.0))
        self.amp.load_state_dict(state)
        restore_rng(state, self.device, seed=self.config.seed + self.step)


def nonzero_weights(model: nn.Module) -> int:
    """Nonzero entries of the effective LSTM weights (after any mask) and the embedding."""
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "lstmpack_kind", None) == "lstm":
                n += int(torch.count_nonzero(m.weight))
            elif isinstance(m, nn.Embedding):
                n += int(torch.count_nonzero(m.weight))
    return n
