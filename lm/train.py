"""Training and evaluation of the AWD-LSTM models; `python -m lm.train --model ptbc --preset cpu`.

The library pieces, for the compression pipeline to reuse:

- `evaluate(model, data, config, batch_size=...)` -> mean NLL per target token (nats).
- `Trainer(model, corpus, config, step_callback=...)`: `run_epoch()` trains one epoch (calling
  `step_callback(trainer)` after every optimizer step), validates, and applies the NT-ASGD switch
  or the `when` lr drops (or sets every step's lr from the cosine schedule, `scheduled_lr`);
  `state_dict()` / `load_state_dict()` capture everything a resume needs.
- `train_run(config, run_dir, ...)` -> metrics: the whole job in a run directory, with atomic
  checkpoints every epoch, resume, TensorBoard scalars, config.json and metrics.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.runtime import configure_cpu
from lm.config import LMConfig
from lm.data import Corpus, batchify, get_batch, load_corpus, sample_seq_len
from lm.model import AWDLSTM, build_model, count_parameters, detach_hidden
from lm.regularizers import activation_regularization, temporal_activation_regularization

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


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


def _limit(data: torch.Tensor, n: int) -> torch.Tensor:
    return data[:n] if n else data


def make_optimizer(params: list[nn.Parameter], config: LMConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.wdecay)
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.wdecay)


def _asgd(params: list[nn.Parameter], config: LMConfig) -> torch.optim.Optimizer:
    return torch.optim.ASGD(params, lr=config.lr, t0=0, lambd=0.0, weight_decay=config.wdecay)


StepCallback = Callable[["Trainer"], None]


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
        step_callback: StepCallback | None = None,
        writer: Any = None,
        progress: bool = False,
    ) -> None:
        self.model, self.config, self.device = model, config, torch.device(device)
        self.step_callback, self.writer, self.progress = step_callback, writer, progress
        self.train_data = batchify(_limit(corpus.train, config.train_tokens), config.batch_size).to(
            self.device
        )
        self.valid = _limit(corpus.valid, config.eval_tokens)
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

    # -- one epoch ------------------------------------------------------------------------------
    def train_epoch(self) -> float:
        """One pass over the training stream (or `max_steps_per_epoch` steps); returns the mean
        raw training NLL. Raises TrainingDivergedError on a NaN/inf loss."""
        cfg, model, opt = self.config, self.model, self.optimizer
        model.train()
        # A generator per (seed, epoch) makes the sequence lengths of an epoch independent of
        # anything before it, so a resumed run draws the same ones.
        rng = np.random.default_rng([cfg.seed, self.epoch])
        hidden = model.init_hidden(cfg.batch_size)
        data = self.train_data
        nrows = data.size(0)
        limited = cfg.max_steps_per_epoch > 0
        # A step-limited epoch continues the stream where the previous one stopped (wrapping at
        # the end), so short epochs still walk through all of the training data.
        i = self.position if limited else 0
        total_loss, nsteps = 0.0, 0
        self.epoch_step = 0
        bar = self._bar(
            cfg.max_steps_per_epoch * cfg.bptt * cfg.batch_size
            if limited
            else nrows * cfg.batch_size
        )
        t0 = time.perf_counter()
        try:
            while True:
                if limited and nsteps >= cfg.max_steps_per_epoch:
                    break
                if i >= nrows - 2:
                    if not limited:
                        break
                    i = 0
                    hidden = model.init_hidden(cfg.batch_size)
                seq_len = sample_seq_len(rng, cfg.bptt)
                x, y = get_batch(data, i, seq_len)
                if cfg.lr_schedule == "cosine":
                    opt.param_groups[0]["lr"] = scheduled_lr(cfg, self.step, self._progress(i))
                base_lr = opt.param_groups[0]["lr"]
                opt.param_groups[0]["lr"] = base_lr * seq_len / cfg.bptt
                hidden = detach_hidden(hidden)
                opt.zero_grad(set_to_none=True)
                out = model(x, hidden)
                hidden = out.hidden
                raw_loss = model.nll(out.output, y)
                loss = raw_loss
                if cfg.alpha:
                    loss = loss + activation_regularization(out.dropped_outputs[-1], cfg.alpha)
                if cfg.beta:
                    loss = loss + temporal_activation_regularization(out.raw_outputs[-1], cfg.beta)
                value = raw_loss.item()
                if not math.isfinite(value) or not math.isfinite(loss.item()):
                    opt.param_groups[0]["lr"] = base_lr
                    raise TrainingDivergedError(
                        f"training loss is {value} at epoch {self.epoch + 1}, step "
                        f"{nsteps + 1} of the epoch (global step {self.step + 1})"
                    )
                loss.backward()
                if cfg.clip:
                    nn.utils.clip_grad_norm_(self.params, cfg.clip)
                opt.step()
                opt.param_groups[0]["lr"] = base_lr
                self.step += 1
                nsteps += 1
                self.epoch_step = nsteps
                total_loss += value
                ntok = y.numel()
                self.train_tokens_seen += ntok
                i += seq_len
                if bar is not None:
                    bar.update(ntok)
                    bar.set_postfix(loss=f"{value:.3f}", refresh=False)
                if self.writer is not None and self.step % cfg.log_interval == 0:
                    self.writer.add_scalar("train/loss", value, self.step)
                    self.writer.add_scalar("train/lr", base_lr, self.step)
                if self.step_callback is not None:
                    self.step_callback(self)
        finally:
            self.position = i if limited else 0
            self.train_time_s += time.perf_counter() - t0
            if bar is not None:
                bar.close()
        return total_loss / max(nsteps, 1)

    def _progress(self, row: int) -> float:
        """How far through the run the next step is: in steps when epochs are step-limited (the
        step count is exact), else in training rows (sequence lengths are random)."""
        cfg = self.config
        if cfg.max_steps_per_epoch > 0:
            return self.step / max(cfg.epochs * cfg.max_steps_per_epoch, 1)
        return (self.epoch + row / max(self.train_data.size(0), 1)) / max(cfg.epochs, 1)

    def _bar(self, total: int) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(
            total=total,
            unit="tok",
            unit_scale=True,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
            dynamic_ncols=True,
        )

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Swap in ASGD's averaged parameters (a no-op before the NT-ASGD switch)."""
        if not self.asgd:
            yield
            return
        saved = []
        with torch.no_grad():
            for p in self.params:
                saved.append(p.detach().clone())
                ax = self.optimizer.state[p].get("ax")
                if ax is not None:
                    p.copy_(ax)
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
        if self.writer is not None:
            self.writer.add_scalar(
                f"valid/{cfg.metric}", nll_to_metric(val_loss, cfg.metric), self.epoch
            )
            self.writer.add_scalar("valid/loss", val_loss, self.epoch)
            self.writer.add_scalar("train/epoch_loss", train_loss, self.epoch)
            self.writer.add_scalar("lr", self.optimizer.param_groups[0]["lr"], self.epoch)
            self.writer.add_scalar("nonzero_weights", nonzero_weights(self.model), self.epoch)
        return {"train_loss": train_loss, "val_loss": val_loss, "improved": float(improved)}

    # -- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
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
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
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
        torch.set_rng_state(state["torch_rng"])


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


# -- run directories ------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temp file in the same folder, then os.replace: never a torn file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would hide run records from others
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


PUBLISHED = {
    "ptbc": {"test_bpc": 1.175, "params": 13_787_650},
    "enwik8": {"test_bpc": 1.232, "params": 47_000_000},
    "ptbw": {"test_ppl": 58.8, "params": 24_221_600},
}

# Fields that may differ between a run's stored config and a resume request.
RESUMABLE_CHANGES = frozenset({"epochs", "threads", "log_interval"})


def _resume_config(stored: LMConfig, requested: LMConfig | None) -> LMConfig:
    if requested is None:
        return stored
    diff = [
        f.name
        for f in fields(LMConfig)
        if getattr(stored, f.name) != getattr(requested, f.name) and f.name not in RESUMABLE_CHANGES
    ]
    if diff:
        raise ValueError(
            f"cannot resume with a different config: {diff} differ from the run's config.json "
            f"(only {sorted(RESUMABLE_CHANGES)} may change on resume)"
        )
    return requested


def train_run(
    config: LMConfig | None,
    run_dir: str | Path,
    *,
    corpus: Corpus | None = None,
    data_dir: str | Path | None = None,
    resume: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = False,
    tensorboard: bool = True,
    step_callback: StepCallback | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Train `config` in `run_dir` (or continue the run there with `resume=True`; `config` may then
    be None to reuse config.json, or differ only in epochs/threads/log_interval), then evaluate the
    best checkpoint on valid and test. Returns the metrics written to metrics.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise ValueError(f"--resume: no {CHECKPOINT} in {run_dir}")
        state = load_checkpoint(ckpt_path)
        config = _resume_config(LMConfig.from_dict(state["config"]), config)
    elif ckpt_path.exists():
        raise ValueError(
            f"{run_dir} already holds a run ({CHECKPOINT}); pass resume=True / --resume"
        )
    if config is None:
        raise ValueError("a config is needed unless resuming")
    atomic_write_json(run_dir / "config.json", config.to_dict())
    if corpus is None:
        corpus = load_corpus(
            config.model, data_dir, verify=verify, enwik8_splits=config.enwik8_splits
        )

    torch.manual_seed(config.seed)
    model = build_model(config, corpus.vocab_size).to(device)
    writer = _summary_writer(run_dir) if tensorboard else None
    trainer = Trainer(
        model,
        corpus,
        config,
        device=device,
        step_callback=step_callback,
        writer=writer,
        progress=progress,
    )
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed %s at epoch %d", run_dir, trainer.epoch)

    def checkpoint_payload() -> dict[str, Any]:
        return {"config": config.to_dict(), "vocab_size": corpus.vocab_size, **trainer.state_dict()}

    try:
        while trainer.epoch < config.epochs:
            t0 = time.perf_counter()
            try:
                res = trainer.run_epoch()
            except TrainingDivergedError as err:
                kept = ckpt_path if ckpt_path.exists() else None
                raise TrainingDivergedError(
                    f"{err}; stopping. Last good checkpoint: "
                    f"{kept if kept else 'none (diverged in the first epoch)'}"
                ) from err
            payload = checkpoint_payload()
            if res["improved"]:
                with trainer.averaged_weights():
                    best = {"config": config.to_dict(), "vocab_size": corpus.vocab_size,
                            "model": model.state_dict(), "epoch": trainer.epoch,
                            "val_loss": res["val_loss"]}  # fmt: skip
                    save_checkpoint(run_dir / BEST, best)
            save_checkpoint(ckpt_path, payload)
            log.info(
                "epoch %d | %.0fs | train loss %.4f | valid loss %.4f (%s %.4f) | tok/s %.0f",
                trainer.epoch,
                time.perf_counter() - t0,
                res["train_loss"],
                res["val_loss"],
                config.metric,
                nll_to_metric(res["val_loss"], config.metric),
                trainer.train_tokens_seen / max(trainer.train_time_s, 1e-9),
            )
        if not ckpt_path.exists():  # epochs == 0: still leave a resumable run behind
            save_checkpoint(ckpt_path, checkpoint_payload())
        metrics = _final_metrics(trainer, corpus, config, run_dir, device)
    finally:
        if writer is not None:
            writer.close()
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def _summary_writer(run_dir: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir))


def _final_metrics(
    trainer: Trainer, corpus: Corpus, config: LMConfig, run_dir: Path, device: torch.device | str
) -> dict[str, Any]:
    model = trainer.model
    best_path = run_dir / BEST
    best_epoch = trainer.epoch
    valid = None
    if best_path.exists():
        best = load_checkpoint(best_path)
        model.load_state_dict(best["model"])
        best_epoch = int(best["epoch"])
        # the same model, data and batch size were scored at the end of that epoch
        valid = float(best["val_loss"])
    t0 = time.perf_counter()
    if valid is None:
        valid = evaluate(model, _limit(corpus.valid, config.eval_tokens), config, device=device)
    test = evaluate(
        model,
        _limit(corpus.test, config.eval_tokens),
        config,
        batch_size=config.test_batch_size,
        device=device,
    )
    eval_time = time.perf_counter() - t0
    m = config.metric
    metrics = {
        "model": config.model,
        "preset": config.preset,
        "valid_loss": valid,
        "test_loss": test,
        f"valid_{m}": nll_to_metric(valid, m),
        f"test_{m}": nll_to_metric(test, m),
        "eval_batch_size": config.eval_batch_size,
        "test_batch_size": config.test_batch_size,
        "eval_tokens": config.eval_tokens or "full",
        "best_epoch": best_epoch,
        "epochs_done": trainer.epoch,
        "steps": trainer.step,
        "train_time_s": trainer.train_time_s,
        "train_tokens": trainer.train_tokens_seen,
        "tokens_per_s": trainer.train_tokens_seen / max(trainer.train_time_s, 1e-9),
        "final_eval_time_s": eval_time,
        "params": count_parameters(model),
        "nonzero_weights": nonzero_weights(model),
        "optimizer_at_end": "asgd" if trainer.asgd else config.optimizer,
        "threads": torch.get_num_threads(),
        "published": PUBLISHED.get(config.model, {}),
    }
    return metrics


# -- CLI ------------------------------------------------------------------------------------------
def _parse_value(field_type: Any, text: str) -> Any:
    t = str(field_type)
    if "tuple" in t:
        return tuple(int(v) for v in text.replace(",", " ").split())
    if t in ("int", "<class 'int'>"):
        return int(text)
    if t in ("float", "<class 'float'>"):
        return float(text)
    if t == "float | None":
        return None if text.lower() == "none" else float(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lm.train", description="Train an AWD-LSTM language model."
    )
    p.add_argument("--model", required=True, choices=["ptbc", "ptbw", "enwik8"])
    p.add_argument("--preset", default="cpu", choices=["paper", "cpu", "smoke"])
    p.add_argument("--run-dir", type=Path, help="run directory (default runs/<model>/<preset>)")
    p.add_argument("--data-dir", type=Path, help="data root (default $LSTMPACK_DATA, then ./data)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the SHA-256 check of the data (for made or partial copies, e.g. a test enwik8)",
    )
    p.add_argument("--device", default="cpu")
    g = p.add_argument_group("config overrides (default: the preset's value)")
    for f in fields(LMConfig):
        if f.name in ("model", "preset"):
            continue
        nargs = "*" if "tuple" in str(f.type) else None  # `--when` alone: no drops
        g.add_argument(f"--{f.name}", dest=f"cfg_{f.name}", nargs=nargs, default=None)
    return p


def config_from_args(args: argparse.Namespace) -> tuple[LMConfig, dict[str, Any]]:
    from lm.presets import get_preset

    base = get_preset(args.model, args.preset)
    overrides: dict[str, Any] = {}
    for f in fields(LMConfig):
        raw = getattr(args, f"cfg_{f.name}", None)
        if raw is None:
            continue
        overrides[f.name] = _parse_value(f.type, " ".join(raw) if isinstance(raw, list) else raw)
    return base.replace(**overrides), overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config, overrides = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path("runs") / args.model / args.preset
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    root.addHandler(console)
    configure_cpu(config.threads or os.cpu_count() or 1)
    try:
        if args.resume:
            # Keep the stored config; only explicitly given overrides are checked against it.
            stored = LMConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
            config = stored.replace(**overrides) if overrides else None
        metrics = train_run(
            config,
            run_dir,
            data_dir=args.data_dir,
            resume=args.resume,
            device=args.device,
            progress=not args.no_progress,
            verify=not args.no_verify,
        )
    except TrainingDivergedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        root.removeHandler(handler)
        root.removeHandler(console)
        handler.close()
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
