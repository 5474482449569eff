"""The Multi30k GRU translator as compress.run sees it (`--model multi30k`).

Targets (default: every recurrent matrix) are the encoder's GRU layers, each direction its own
(`encoder.l0`, `encoder.l0_reverse`, ...), and the decoder's GRU (`decoder`): fused
[W_ih | W_hh] matrices with the gate blocks r, z, n. Embeddings, the attention, the readout and
the vocabulary projection stay dense unless `--targets` names them.

Quality is sacreBLEU corpus BLEU (tokenize="none") on the validation and test_2016_flickr
splits, decoded as the preset says (beam search, or greedy for `paper`). A compressed copy
fine-tunes at a tenth of the dense peak rate, cosine down to lr_min.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from common.spec import Finetune, ModelSpec
from nmt.multi30k.config import Multi30kConfig, preset_config
from nmt.multi30k.data import Multi30kData, batch_tensors, length_batches, load_multi30k
from nmt.multi30k.evaluation import evaluate as evaluate_translator
from nmt.multi30k.model import build_model
from nmt.multi30k.training import steps_per_epoch, train

FINETUNE_LR_FACTOR = 0.1
CALIBRATION_BATCHES = 8


@dataclass(frozen=True)
class Multi30kSpec(ModelSpec):
    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {"smoke": 1, "cpu": 1, "paper": 1}
    FINETUNE_STEPS: ClassVar[dict[str, int]] = {"smoke": 20, "cpu": 300, "paper": 0}
    FEATURES: ClassVar[frozenset[str]] = frozenset({"joint", "distill", "l1"})

    def config(self, preset: str) -> Multi30kConfig:
        return preset_config(preset)

    def dense_max_steps(self, cfg: Multi30kConfig) -> int:
        return cfg.max_steps

    def load_data(self, cfg: Multi30kConfig, data_dir: str | None, verify: bool = True):
        return load_multi30k(cfg, data_dir, verify=verify)

    def build(self, cfg: Multi30kConfig, data: Multi30kData) -> nn.Module:
        return build_model(cfg, len(data.src_vocab), len(data.tgt_vocab))

    def steps_per_epoch(self, cfg: Multi30kConfig, data: Multi30kData) -> int:
        return steps_per_epoch(cfg, data)

    def workload(self, cfg: Multi30kConfig, data: Multi30kData | None = None) -> dict[str, int]:
        # hwsim takes one sequence length for every layer: the encoder runs over the source and
        # the decoder over the target (with its <eos>), so one translation is modelled at their
        # mean test length, batch 1 (Multi30k's test_2016_flickr: 12.5 words a side)
        if data is None:
            return {"seq_len": 13, "batch": 1}
        lengths = np.concatenate((data.test.src_lengths, data.test.tgt_lengths + 1))
        return {"seq_len": max(1, round(float(lengths.mean()))), "batch": 1}

    def train_dense(
        self,
        model: nn.Module,
        data: Multi30kData,
        cfg: Multi30kConfig,
        train_dir: Path,
        *,
        epochs: int,
        resume: bool,
    ) -> dict[str, Any]:
        return train(model, data, cfg, train_dir, resume=resume, epochs=epochs, label="dense")

    def finetune(
        self, model: nn.Module, data: Multi30kData, cfg: Multi30kConfig, train_dir: Path,
        ft: Finetune,
    ) -> dict[str, Any]:  # fmt: skip
        """The dense config as it is under ft.schedule == "dense" (the joint recipe); else a
        tenth of the dense peak rate, cosine down to lr_min, at most ft.max_steps steps."""
        if ft.schedule == "dense":
            tuned = cfg
        else:
            lr = cfg.lr * FINETUNE_LR_FACTOR
            tuned = cfg.replace(max_steps=ft.max_steps, lr=lr, lr_min=min(cfg.lr_min, lr),
                                lr_schedule="cosine")  # fmt: skip
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

    def evaluate(self, model: nn.Module, data: Multi30kData, cfg: Multi30kConfig) -> dict:
        ev = evaluate_translator(model, data, cfg)
        out: dict[str, Any] = {"valid": ev["valid"]["bleu"], "test": ev["test"]["bleu"]}
        for split in ("valid", "test"):
            for key in ("bleu_greedy", "bleu_beam", "loss"):
                if key in ev[split]:
                    out[f"{split}_{key}"] = ev[split][key]
        out["bleu_signature"] = ev["test"]["bleu_signature"]
        out["decoding"] = ev["decoding"]
        out["samples"] = ev["test"]["samples"]
        return out

    def calibration(
        self, model: nn.Module, data: Multi30kData, cfg: Multi30kConfig
    ) -> tuple[Callable, Iterable]:
        batches = length_batches(data.train, cfg.batch_size, seed=cfg.seed)[:CALIBRATION_BATCHES]

        @torch.no_grad()
        def run_batch(idx: np.ndarray) -> None:
            model.eval()
            src, src_len, tgt_in, _ = batch_tensors(data.train, idx)
            model(src, src_len, tgt_in)

        return run_batch, batches


MULTI30K = Multi30kSpec("multi30k", "multi30k", "bleu", higher_is_better=True)
