"""The AWD-LSTM models as compress.run sees them (compress.registry.ModelSpec).

Dense training is `lm.train.train_run` in `<dense run>/train/`; compressed fine-tuning drives the
same `Trainer` on the model that carries the passes' parametrizations, and saves the pipeline's
state with every checkpoint so that a killed run resumes to the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lm.config import LMConfig
from lm.data import Corpus, batchify, get_batch, load_corpus
from lm.model import build_model
from lm.presets import get_preset
from lm.train import (
    BEST,
    CHECKPOINT,
    Trainer,
    evaluate,
    load_checkpoint,
    nll_to_metric,
    save_checkpoint,
    train_run,
)

log = logging.getLogger(__name__)

TRAIN_SUBDIR = "train"
# Fine-tuning a compressed model needs far fewer epochs than training it; per preset.
FINETUNE_EPOCHS = {"smoke": 1, "cpu": 1, "paper": 50}
# ... and at most this many optimizer steps (0: the whole epochs); see BENCHMARKS.md for the cost
FINETUNE_STEPS = {"smoke": 0, "cpu": 300, "paper": 0}


def finetune_lr(cfg: LMConfig) -> float:
    """The learning rate the dense step schedule ended at (after its `when` drops), or a tenth of
    the peak after a cosine schedule (whose end, lr_min, is too small to recover anything):
    fine-tuning a compressed copy continues from there. Restarting at the initial rate undoes
    more of the dense training than a short fine-tune can recover, even with no compression."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.1
    drops = sum(1 for w in cfg.when if w <= cfg.epochs)
    return cfg.lr * 0.1**drops


@dataclass(frozen=True)
class LMSpec:
    name: str
    dataset: str
    metric: str
    higher_is_better: bool = False

    # -- configs ---------------------------------------------------------------------------------
    def config(self, preset: str) -> LMConfig:
        return get_preset(self.name, preset)

    def config_from_dict(self, data: dict[str, Any]) -> LMConfig:
        return LMConfig.from_dict(data)

    def config_to_dict(self, cfg: LMConfig) -> dict[str, Any]:
        return cfg.to_dict()

    def dense_epochs(self, cfg: LMConfig) -> int:
        return cfg.epochs

    def finetune_epochs(self, cfg: LMConfig) -> int:
        return FINETUNE_EPOCHS.get(cfg.preset, 1)

    def finetune_steps(self, cfg: LMConfig) -> int:
        return FINETUNE_STEPS.get(cfg.preset, 0)

    # -- data and model --------------------------------------------------------------------------
    def load_data(self, cfg: LMConfig, data_dir: str | None, verify: bool = True) -> Corpus:
        return load_corpus(self.name, data_dir, verify=verify, enwik8_splits=cfg.enwik8_splits)

    def build(self, cfg: LMConfig, data: Corpus) -> nn.Module:
        return build_model(cfg, data.vocab_size)

    def steps_per_epoch(self, cfg: LMConfig, data: Corpus) -> int:
        """Optimizer steps in one epoch, estimated from the mean BPTT length (it is random)."""
        n = len(data.train) if not cfg.train_tokens else min(cfg.train_tokens, len(data.train))
        rows = n // cfg.batch_size
        mean_len = 0.95 * cfg.bptt + 0.05 * cfg.bptt / 2
        steps = max(1, int(rows / max(mean_len, 5)))
        return min(steps, cfg.max_steps_per_epoch) if cfg.max_steps_per_epoch else steps

    def workload(self, cfg: LMConfig, data: Corpus | None = None) -> dict[str, int]:
        # One inference = one BPTT window of one stream, as a deployed char model runs.
        return {"seq_len": cfg.bptt, "batch": 1}

    # -- training --------------------------------------------------------------------------------
    def train(
        self,
        model: nn.Module,
        data: Corpus,
        cfg: LMConfig,
        run_dir: Path,
        *,
        epochs: int,
        resume: bool,
        on_step: Callable[[int], object] | None = None,
        extra_state: Any = None,
        lr_scale: float = 1.0,
        seed: int = 0,
        max_steps: int = 0,
    ) -> dict[str, Any]:
        train_dir = Path(run_dir) / TRAIN_SUBDIR
        if extra_state is None:
            return self._train_dense(model, data, cfg, train_dir, epochs=epochs)
        if max_steps:
            # a cap on all fine-tuning steps, spread evenly over the epochs
            per_epoch = max(1, -(-max_steps // max(epochs, 1)))
            if not cfg.max_steps_per_epoch or per_epoch < cfg.max_steps_per_epoch:
                cfg = cfg.replace(max_steps_per_epoch=per_epoch)
        return self._finetune(
            model, data, cfg, train_dir, epochs, resume, on_step, extra_state, lr_scale
        )

    def _train_dense(self, model, data, cfg, train_dir: Path, *, epochs: int) -> dict[str, Any]:
        resume = (train_dir / CHECKPOINT).is_file()
        metrics = train_run(cfg.replace(epochs=epochs), train_dir, corpus=data, resume=resume)
        best = load_checkpoint(
            train_dir / BEST if (train_dir / BEST).is_file() else train_dir / CHECKPOINT
        )
        model.load_state_dict(best["model"])
        # train_run scored this model (the best checkpoint) on valid and test exactly as
        # `evaluate` does: same splits, limits and batch sizes
        m = cfg.metric
        return {
            **metrics,
            "quality": {"valid": metrics[f"valid_{m}"], "test": metrics[f"test_{m}"]},
        }

    def _finetune(self, model, data, cfg, train_dir, epochs, resume, on_step, pipe, lr_scale):
        # a constant rate: the fine-tune is short and follows the dense schedule's end (lr_min
        # reset because a cosine run's floor may sit above a tenth of its peak)
        ft_cfg = cfg.replace(
            epochs=epochs, when=(), lr=finetune_lr(cfg) * lr_scale, lr_schedule="step", lr_min=0.0
        )
        train_dir.mkdir(parents=True, exist_ok=True)
        callback = None if on_step is None else (lambda tr: on_step(tr.step - 1))
        trainer = Trainer(model, data, ft_cfg, step_callback=callback, progress=True)
        ckpt = train_dir / CHECKPOINT
        if resume and ckpt.is_file():
            state = load_checkpoint(ckpt)
            trainer.load_state_dict(state)
            pipe.load_state_dict(state["pipeline"])
            log.info("fine-tuning resumed at epoch %d (step %d)", trainer.epoch, trainer.step)
        while trainer.epoch < ft_cfg.epochs:
            res = trainer.run_epoch()
            save_checkpoint(
                ckpt,
                {"config": ft_cfg.to_dict(), **trainer.state_dict(), "pipeline": pipe.state_dict()},
            )
            log.info(
                "fine-tune epoch %d: valid %s %.4f",
                trainer.epoch,
                self.metric,
                nll_to_metric(res["val_loss"], self.metric),
            )
        if trainer.asgd:
            # keep ASGD's averaged weights, as the published evaluation does
            with torch.no_grad():
                for p in trainer.params:
                    ax = trainer.optimizer.state[p].get("ax")
                    if ax is not None:
                        p.copy_(ax)
        return {
            "epochs": trainer.epoch,
            "steps": trainer.step,
            "train_time_s": trainer.train_time_s,
            "tokens_per_s": trainer.train_tokens_seen / max(trainer.train_time_s, 1e-9),
        }

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, model: nn.Module, data: Corpus, cfg: LMConfig) -> dict[str, float]:
        def lim(x: torch.Tensor) -> torch.Tensor:
            return x[: cfg.eval_tokens] if cfg.eval_tokens else x

        valid = evaluate(model, lim(data.valid), cfg)
        test = evaluate(model, lim(data.test), cfg, batch_size=cfg.test_batch_size)
        return {
            "valid": nll_to_metric(valid, self.metric),
            "test": nll_to_metric(test, self.metric),
        }

    def calibration(
        self, model: nn.Module, data: Corpus, cfg: LMConfig
    ) -> tuple[Callable, Iterable]:
        """Forward passes over the first training windows, in eval mode (no dropout)."""
        source = batchify(data.train[: cfg.batch_size * cfg.bptt * 16 + 1], cfg.batch_size)
        starts = np.arange(0, source.size(0) - 1, cfg.bptt)
        state = {"hidden": None}

        def run_batch(i: int) -> None:
            model.eval()
            x, _ = get_batch(source, int(i), cfg.bptt)
            if state["hidden"] is None:
                state["hidden"] = model.init_hidden(cfg.batch_size)
            state["hidden"] = model(x, state["hidden"]).hidden

        return run_batch, starts.tolist()


PTBC = LMSpec("ptbc", "ptb_char", "bpc")
PTBW = LMSpec("ptbw", "ptb_word", "ppl")
ENWIK8 = LMSpec("enwik8", "enwik8", "bpc")
