"""A training run in a directory: `train_run(config, run_dir, ...)` -> metrics.

The run directory holds config.json, an atomic checkpoint after every epoch (checkpoint.pt, for
resume) and the best one so far (best.pt), TensorBoard scalars and, at the end, metrics.json: the
best checkpoint scored on valid and test. lm.spec reuses the checkpoint helpers for fine-tuning.

Under data parallelism (a torchrun process group, common.distributed) every rank runs the same
run and only rank 0 writes: config.json, the checkpoints, TensorBoard and metrics.json. Every
rank reads the best checkpoint back at the end, after a barrier, so every rank ends with the
same model; a resumed run loads the checkpoint on every rank.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from common import distributed
from common.atomic import atomic_write, atomic_write_json, remove_stale_temps
from common.device import check_resumed_precision
from lm.config import LMConfig
from lm.data import Corpus, load_corpus
from lm.model import build_model, count_parameters
from lm.trainer import (
    StepCallback,
    Trainer,
    TrainingDivergedError,
    evaluate,
    limit_tokens,
    nll_to_metric,
    nonzero_weights,
)

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


# The published models' test figures and sizes, copied into metrics.json to compare against.
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
    precision: str = "fp32",
    progress: bool = False,
    tensorboard: bool = True,
    step_callback: StepCallback | None = None,
    verify: bool = True,
    label: str = "train",
) -> dict[str, Any]:
    """Train `config` in `run_dir` (or continue the run there with `resume=True`; `config` may then
    be None to reuse config.json, or differ only in epochs/threads/log_interval), then evaluate the
    best checkpoint on valid and test. Returns the metrics written to metrics.json.

    `progress` shows one bar over the whole run on a terminal; every epoch logs a line either way,
    and the run logs its plan first and its times last, each line starting with `label`.
    `device` and `precision` are the Trainer's; a run resumes on any device, in the precision it
    trained in (ValueError otherwise, before anything is written)."""
    run_dir = Path(run_dir)
    main = distributed.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise ValueError(f"--resume: no {CHECKPOINT} in {run_dir}")
        state = load_checkpoint(ckpt_path)
        check_resumed_precision(state.get("precision"), precision, f"the run in {run_dir}")
        config = _resume_config(LMConfig.from_dict(state["config"]), config)
    elif ckpt_path.exists():
        raise ValueError(
            f"{run_dir} already holds a run ({CHECKPOINT}); pass resume=True / --resume"
        )
    if config is None:
        raise ValueError("a config is needed unless resuming")
    if main:
        remove_stale_temps(run_dir)  # what a write cut off by a kill left; rank 0 alone writes
        atomic_write_json(run_dir / "config.json", config.to_dict(), sort_keys=True)
    if corpus is None:
        corpus = load_corpus(
            config.model, data_dir, verify=verify, enwik8_splits=config.enwik8_splits
        )

    torch.manual_seed(config.seed)
    model = build_model(config, corpus.vocab_size).to(device)
    # TensorBoard hides what a killed process logged after the checkpoint (from its step + 1 on;
    # all of it when there is none), which this one logs again
    purge = int(state["step"]) + 1 if state is not None else 1
    writer = _summary_writer(run_dir, purge) if tensorboard and main else None
    trainer = Trainer(
        model,
        corpus,
        config,
        device=device,
        precision=precision,
        step_callback=step_callback,
        writer=writer,
        progress=progress,
        label=label,
    )
    if state is not None:
        trainer.load_state_dict(state)
        log.info("resumed %s at epoch %d", run_dir, trainer.epoch)
    if trainer.epoch < config.epochs:
        log.info(
            "%s: training %d epochs of %s steps in %s%s",
            label,
            config.epochs,
            config.max_steps_per_epoch or f"~{trainer.stage_steps() // max(config.epochs, 1)}",
            run_dir,
            f", from epoch {trainer.epoch + 1} (step {trainer.step})" if trainer.step else "",
        )
    started = time.perf_counter()

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
            if main:  # every rank holds the same model: rank 0's files are every rank's
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
        if main and not ckpt_path.exists():  # epochs == 0: still leave a resumable run behind
            save_checkpoint(ckpt_path, checkpoint_payload())
        looped = time.perf_counter() - started  # the epochs with their validations
        distributed.barrier()  # every rank reads best.pt next: rank 0 has written it
        metrics = _final_metrics(trainer, corpus, config, run_dir, device)
    finally:
        trainer.close_progress()
        if writer is not None:
            writer.close()
    log.info(
        "%s: %d epochs (%d steps) in %.0f s of training steps; this process %.0f s of epochs"
        " with their validations, %.0f s of final evaluation",
        label,
        trainer.epoch,
        trainer.step,
        trainer.train_time_s,
        looped,
        metrics["final_eval_time_s"],
    )
    if main:
        atomic_write_json(run_dir / "metrics.json", metrics, sort_keys=True)
    return metrics


def _summary_writer(run_dir: Path, purge_step: int | None = None) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)


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
        valid = evaluate(
            model, limit_tokens(corpus.valid, config.eval_tokens), config, device=device
        )
    test = evaluate(
        model,
        limit_tokens(corpus.test, config.eval_tokens),
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
        "device": str(torch.device(device)),
        "precision": trainer.precision,
        "processes": trainer.world.size,
        "published": PUBLISHED.get(config.model, {}),
    }
    return metrics
