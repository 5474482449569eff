"""The AWD-LSTM models as a compression run sees them (a common.spec.ModelSpec).

Dense training is `lm.rundir.train_run` in the run's train folder; compressed fine-tuning drives
the same `Trainer` on the model that carries the passes' parametrizations, and saves the
pipeline's state with every checkpoint so that a killed run resumes to the same numbers.

Both train where the run says (`runtime`, Finetune.runtime: device and precision) and, under
torchrun, data-parallel (the Trainer finds the process group); only rank 0 writes checkpoints.
Evaluation and calibration run on the device the model is on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from common import distributed
from common.device import CPU, Runtime, module_device
from common.spec import Finetune, ModelSpec
from lm.config import LMConfig
from lm.data import Corpus, batchify, get_batch, load_corpus
from lm.model import build_model
from lm.presets import get_preset
from lm.rundir import BEST, CHECKPOINT, load_checkpoint, save_checkpoint, train_run
from lm.trainer import Trainer, dense_lr, evaluate, limit_tokens, nll_to_metric

log = logging.getLogger(__name__)


def finetune_lr(cfg: LMConfig) -> float:
    """The learning rate the dense step schedule ended at (after its `when` drops), or a tenth of
    the peak after a cosine schedule (whose end, lr_min, is too small to recover anything):
    fine-tuning a compressed copy continues from there. Restarting at the initial rate undoes
    more of the dense training than a short fine-tune can recover, even with no compression."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.1
    drops = sum(1 for w in cfg.when if w <= cfg.epochs)
    return cfg.lr * 0.1**drops


def rewound_lr(
    dense: LMConfig, dense_steps: int, dense_steps_per_epoch: int, steps: int, scale: float = 1.0
) -> Callable[[int], float]:
    """Learning-rate rewinding (Renda, Frankle and Carbin, ICLR'20): fine-tuning step j of
    `steps` takes the rate of dense step dense_steps - steps + j, so a fine-tune as long as the
    dense run replays its whole schedule and a short one its tail (clamped at the first step)."""
    first = dense_steps - steps

    def lr_at(step: int) -> float:
        s = min(max(first + step, 0), dense_steps - 1)
        return scale * dense_lr(dense, s, dense_steps, dense_steps_per_epoch)

    return lr_at


@dataclass(frozen=True)
class LMSpec(ModelSpec):
    # Fine-tuning a compressed model needs far fewer epochs than training it ...
    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {"smoke": 1, "cpu": 1, "paper": 50}
    # ... and at most this many optimizer steps (0: the whole epochs); see BENCHMARKS.md for the cost
    FINETUNE_STEPS: ClassVar[dict[str, int]] = {"smoke": 0, "cpu": 300, "paper": 0}
    # ... except where a model's cpu fine-tune was measured longer: (epochs, steps) of the
    # posthoc recipe below (BENCHMARKS.md, "Column combining that keeps accuracy"); a ptbw step
    # costs about 1.5 ptbc steps, so it keeps half as many
    MODEL_FINETUNE: ClassVar[dict[tuple[str, str], tuple[int, int]]] = {
        ("ptbc", "cpu"): (8, 2400),
        ("enwik8", "cpu"): (8, 2400),
        ("ptbw", "cpu"): (4, 1200),
    }
    # the best posthoc recipe measured on ptbc cpu at alpha 3 (BENCHMARKS.md): a cosine from 8x
    # the constant fine-tune rate (0.8 of the dense peak) down to the dense floor, combining's
    # pre-prune at 0.8 (1 - 1/alpha), distillation from the dense model at T 2, W 1
    POSTHOC_DEFAULTS: ClassVar[dict[str, Any]] = {
        "finetune_schedule": "cosine",
        "lr_scale": 8.0,
        "prune_factor": 0.8,
        "distill": "2,1",
    }
    FEATURES: ClassVar[frozenset[str]] = frozenset(
        {"distill", "lr_rewind", "joint", "l1", "finetune_schedule", "device", "precision",
         "distributed"}
    )  # fmt: skip

    def finetune_epochs(self, cfg: LMConfig) -> int:
        own = self.MODEL_FINETUNE.get((self.name, cfg.preset))
        return own[0] if own else super().finetune_epochs(cfg)

    def finetune_steps(self, cfg: LMConfig) -> int:
        own = self.MODEL_FINETUNE.get((self.name, cfg.preset))
        return own[1] if own else super().finetune_steps(cfg)

    # -- configs ---------------------------------------------------------------------------------
    def config(self, preset: str) -> LMConfig:
        return get_preset(self.name, preset)

    def check_processes(self, cfg: LMConfig, processes: int) -> None:
        # each process trains on an equal share of the batch's columns
        distributed.share(cfg.batch_size, distributed.World(size=processes))

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
    def train_dense(
        self,
        model: nn.Module,
        data: Corpus,
        cfg: LMConfig,
        train_dir: Path,
        *,
        epochs: int,
        resume: bool,
        runtime: Runtime = CPU,
    ) -> dict[str, Any]:
        """train_run in train_dir, continuing the checkpoint there when asked to and there is
        one; the model ends with the best checkpoint's weights."""
        train_dir = Path(train_dir)
        resume = resume and (train_dir / CHECKPOINT).is_file()
        metrics = train_run(
            cfg.replace(epochs=epochs), train_dir, corpus=data, resume=resume, progress=True,
            label="dense", device=runtime.device, precision=runtime.precision,
        )  # fmt: skip
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

    def finetune(
        self, model: nn.Module, data: Corpus, cfg: LMConfig, train_dir: Path, ft: Finetune
    ) -> dict[str, Any]:
        """The dense config unchanged under ft.schedule == "dense" (the joint recipe: every step,
        lr curve and dropout of the dense run; ft.lr_scale scales the curve). Otherwise a
        constant rate (the dense schedule's end, see finetune_lr, times ft.lr_scale), the fine-tune
        being short, or that rate decayed by a cosine to the dense floor (ft.lr_decay "cosine"),
        or with ft.lr_rewind the tail of the dense run's own schedule; lr_min is
        reset because a cosine run's floor may sit above a tenth of its peak; ft.max_steps is
        spread evenly over the epochs. Every epoch ends with a validation, kept in the result's
        "valid" (one entry per epoch) and in the checkpoint."""
        if ft.schedule == "dense":
            ft_cfg = cfg.replace(
                epochs=ft.epochs, lr=cfg.lr * ft.lr_scale, lr_min=cfg.lr_min * ft.lr_scale
            )
            lr_at = None
        else:
            ft_cfg, lr_at = self._finetune_config(cfg, data, ft)
        # about a hundred TensorBoard points over the fine-tune: at the dense interval a 300-step
        # fine-tune would log one (log_interval changes nothing but the logging)
        total = self.steps_per_epoch(ft_cfg, data) * ft_cfg.epochs
        ft_cfg = ft_cfg.replace(log_interval=max(1, min(ft_cfg.log_interval, total // 100)))
        train_dir = Path(train_dir)
        if distributed.is_main():
            train_dir.mkdir(parents=True, exist_ok=True)
        on_step = ft.on_step
        callback = None if on_step is None else (lambda tr: on_step(tr.step - 1))
        trainer = Trainer(
            model, data, ft_cfg, step_callback=callback, writer=ft.writer, progress=True,
            distill=ft.distill, penalty=ft.penalty, lr_at=lr_at, label="fine-tune",
            device=ft.runtime.device, precision=ft.runtime.precision,
        )  # fmt: skip
        ckpt = train_dir / CHECKPOINT
        history: list[dict[str, Any]] = []
        if ft.resume and ckpt.is_file():
            state = load_checkpoint(ckpt)
            trainer.load_state_dict(state)
            ft.state.load_state_dict(state["pipeline"])
            history = list(state.get("valid_history", []))
            log.info("fine-tuning resumed at epoch %d (step %d)", trainer.epoch, trainer.step)
        resumed_at = getattr(ft.writer, "resumed_at", None)  # lstmpack.run.joint.RunWriter
        if resumed_at is not None:
            resumed_at(trainer.step)
        if trainer.epoch < ft_cfg.epochs:
            log.info(
                "fine-tune: training %d epochs, ~%d steps", ft_cfg.epochs, trainer.stage_steps()
            )
        try:
            while trainer.epoch < ft_cfg.epochs:
                res = trainer.run_epoch()
                valid = nll_to_metric(res["val_loss"], self.metric)
                history.append({"epoch": trainer.epoch, "step": trainer.step, self.metric: valid})
                if distributed.is_main():  # every rank holds the same model and pipeline state
                    save_checkpoint(
                        ckpt,
                        {
                            "config": ft_cfg.to_dict(),
                            **trainer.state_dict(),
                            "pipeline": ft.state.state_dict(),
                            "valid_history": history,
                        },
                    )
                log.info(
                    "fine-tune epoch %d | step %d | valid %s %.4f | tok/s %.0f",
                    trainer.epoch,
                    trainer.step,
                    self.metric,
                    valid,
                    trainer.train_tokens_seen / max(trainer.train_time_s, 1e-9),
                )
        finally:
            trainer.close_progress()
        trainer.keep_averaged_weights()
        info: dict[str, Any] = {
            "epochs": trainer.epoch,
            "steps": trainer.step,
            "train_time_s": trainer.train_time_s,
            "tokens_per_s": trainer.train_tokens_seen / max(trainer.train_time_s, 1e-9),
            "valid": history,
        }
        if ft.distill is not None:
            info["teacher_time_s"] = trainer.teacher_time_s
        if lr_at is not None:
            info["lr_first"], info["lr_last"] = lr_at(0), lr_at(max(trainer.step - 1, 0))
        return info

    def _finetune_config(
        self, cfg: LMConfig, data: Corpus, ft: Finetune
    ) -> tuple[LMConfig, Callable[[int], float] | None]:
        """The short fine-tune's config, and its rewound schedule when ft.lr_rewind asks."""
        dense = cfg
        if ft.max_steps:
            per_epoch = max(1, -(-ft.max_steps // max(ft.epochs, 1)))
            if not cfg.max_steps_per_epoch or per_epoch < cfg.max_steps_per_epoch:
                cfg = cfg.replace(max_steps_per_epoch=per_epoch)
        ft_cfg = cfg.replace(
            epochs=ft.epochs,
            when=(),
            lr=finetune_lr(cfg) * ft.lr_scale,
            lr_schedule="step",
            lr_min=0.0,
        )
        if ft.lr_decay == "cosine":  # from the fine-tune's rate down to the dense run's floor
            ft_cfg = ft_cfg.replace(lr_schedule="cosine", lr_min=min(dense.lr_min, ft_cfg.lr))
        if not ft.lr_rewind:
            return ft_cfg, None
        dense_per_epoch = self.steps_per_epoch(dense, data)
        steps = self.steps_per_epoch(ft_cfg, data) * ft_cfg.epochs
        lr_at = rewound_lr(
            dense, dense_per_epoch * dense.epochs, dense_per_epoch, steps, ft.lr_scale
        )
        return ft_cfg, lr_at

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, model: nn.Module, data: Corpus, cfg: LMConfig) -> dict[str, float]:
        device = module_device(model)
        valid = evaluate(model, limit_tokens(data.valid, cfg.eval_tokens), cfg, device=device)
        test = evaluate(
            model,
            limit_tokens(data.test, cfg.eval_tokens),
            cfg,
            batch_size=cfg.test_batch_size,
            device=device,
        )
        return {
            "valid": nll_to_metric(valid, self.metric),
            "test": nll_to_metric(test, self.metric),
        }

    def calibration(
        self, model: nn.Module, data: Corpus, cfg: LMConfig
    ) -> tuple[Callable, Iterable]:
        """Forward passes over the first training windows, in eval mode (no dropout), on the
        device the model is on when they run."""
        source = batchify(data.train[: cfg.batch_size * cfg.bptt * 16 + 1], cfg.batch_size)
        starts = np.arange(0, source.size(0) - 1, cfg.bptt)
        state = {"hidden": None}

        def run_batch(i: int) -> None:
            model.eval()
            x, _ = get_batch(source, int(i), cfg.bptt)
            x = x.to(module_device(model))
            if state["hidden"] is None:
                state["hidden"] = model.init_hidden(cfg.batch_size)
            state["hidden"] = model(x, state["hidden"]).hidden

        return run_batch, starts.tolist()


PTBC = LMSpec("ptbc", "ptb_char", "bpc")
PTBW = LMSpec("ptbw", "ptb_word", "ppl")
ENWIK8 = LMSpec("enwik8", "enwik8", "bpc")
