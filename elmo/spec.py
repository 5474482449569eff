"""ELMo's biLM as compress.run sees it (`--model elmo`).

Targets (default: every recurrent matrix) are each direction's LSTM layers, `fwd_lstm.k` and
`bwd_lstm.k`: fused [W_ih | W_hh] matrices of kind "lstm" whose recurrent columns are the
projection's width (proj_size), and their projections `fwd_lstm.k.proj`, `bwd_lstm.k.proj`
(kind "proj"). The character CNN, the highway layers, the token projection and the shared
softmax stay dense unless `--targets` names them (the highway and projection layers are
nn.Linear targets then).

Quality is perplexity with the full softmax: the mean of the forward and the backward LM's
(ELMo's figure) on valid and test, each direction's recorded beside it. A compressed copy
fine-tunes at a tenth of the dense peak rate, held constant or decayed by a cosine to the dense
floor (`--finetune-schedule`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from common.device import module_device
from common.spec import Finetune, ModelSpec
from elmo.config import ELMoConfig, preset_config
from elmo.data import PTB_DATASET, ELMoData, check_sizes, load_data, window
from elmo.evaluation import evaluate as evaluate_bilm
from elmo.model import build_model
from elmo.training import steps_per_epoch, train, train_streams

FINETUNE_LR_FACTOR = 0.1
CALIBRATION_BATCHES = 8


@dataclass(frozen=True)
class ELMoSpec(ModelSpec):
    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {"smoke": 1, "cpu": 1, "paper": 1}
    # cpu: 300 steps, about a fifth of the dense run's; paper: a fraction of one lm1b epoch
    # (~300k steps at batch 128 x 20)
    FINETUNE_STEPS: ClassVar[dict[str, int]] = {"smoke": 10, "cpu": 300, "paper": 20_000}
    FEATURES: ClassVar[frozenset[str]] = frozenset({"joint", "distill", "l1", "finetune_schedule"})

    def config(self, preset: str) -> ELMoConfig:
        return preset_config(preset)

    def dense_max_steps(self, cfg: ELMoConfig) -> int:
        return cfg.max_steps

    def datasets_for(self, cfg: ELMoConfig) -> tuple[str, ...]:
        # lm1b has no pinned hashes: load_data checks its files (common.datasets.verify)
        return (PTB_DATASET,) if cfg.corpus == "ptb" else ()

    def load_data(self, cfg: ELMoConfig, data_dir: str | None, verify: bool = True) -> ELMoData:
        data = load_data(cfg, data_dir, verify=verify)
        check_sizes(data, cfg)
        return data

    def build(self, cfg: ELMoConfig, data: ELMoData) -> nn.Module:
        return build_model(cfg, data.vocab_size)

    def steps_per_epoch(self, cfg: ELMoConfig, data: ELMoData) -> int:
        return steps_per_epoch(cfg, data)

    def workload(self, cfg: ELMoConfig, data: ELMoData | None = None) -> dict[str, int]:
        # one inference: a window of bptt tokens of one stream, read by both directions (each
        # direction's layers are their own targets, each running bptt steps)
        return {"seq_len": cfg.bptt, "batch": 1}

    def train_dense(
        self,
        model: nn.Module,
        data: ELMoData,
        cfg: ELMoConfig,
        train_dir: Path,
        *,
        epochs: int,
        resume: bool,
    ) -> dict[str, Any]:
        return train(model, data, cfg, train_dir, resume=resume, epochs=epochs, label="dense")

    def finetune(
        self, model: nn.Module, data: ELMoData, cfg: ELMoConfig, train_dir: Path, ft: Finetune
    ) -> dict[str, Any]:
        """The dense config as it is under ft.schedule == "dense" (the joint recipe); else a
        tenth of the dense peak rate, constant or (ft.lr_decay "cosine") decayed to the dense
        floor, with no warm-up, at most ft.max_steps steps."""
        if ft.schedule == "dense":
            tuned = cfg
        else:
            lr = cfg.lr * FINETUNE_LR_FACTOR
            cosine = ft.lr_decay == "cosine"
            tuned = cfg.replace(max_steps=ft.max_steps, lr=lr, lr_min=min(cfg.lr_min, lr),
                                lr_schedule="cosine" if cosine else "constant",
                                warmup_steps=0)  # fmt: skip
        return train(
            model,
            data,
            tuned,
            train_dir,
            callback=ft.on_step,
            resume=ft.resume,
            epochs=ft.epochs,
            extra_state=ft.state,
            lr_scale=ft.lr_scale,
            distill=ft.distill,
            penalty=ft.penalty,
            writer=ft.writer,
            label="fine-tune",
        )

    def evaluate(self, model: nn.Module, data: ELMoData, cfg: ELMoConfig) -> dict[str, Any]:
        ev = evaluate_bilm(model, data, cfg)  # type: ignore[arg-type]
        out: dict[str, Any] = {"valid": ev["valid"]["ppl"], "test": ev["test"]["ppl"]}
        for split in ("valid", "test"):
            for key in ("ppl_forward", "ppl_backward"):
                out[f"{split}_{key}"] = ev[split][key]
        return out

    def calibration(
        self, model: nn.Module, data: ELMoData, cfg: ELMoConfig
    ) -> tuple[Callable, Iterable]:
        """Both directions over the first training windows of the forward streams, in eval mode,
        each window from zero states."""
        source = train_streams(data, cfg)["fwd"]
        starts = list(range(0, source.size(0) - 1, cfg.bptt))[:CALIBRATION_BATCHES]

        @torch.no_grad()
        def run_batch(start: int) -> None:
            model.eval()
            x, _ = window(source, start, cfg.bptt)
            model(data.char_ids(x.to(module_device(model))))

        return run_batch, starts


ELMO = ELMoSpec("elmo", PTB_DATASET, "ppl")
