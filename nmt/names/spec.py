"""The spiking surname classifier as compress.run sees it (`--model names`).

Targets are the cells' `linear_ih` / `linear_hh` matrices. Their inputs are binary where the
hardware can accumulate instead of multiply: the one-hot letters (rate 1/58) into every first-layer
`linear_ih`, and the gate-spiking cell's binary h into `linear_hh` (its measured spike rate).
The names trainer counts optimizer steps, not epochs: dense training runs the preset's `steps`,
fine-tuning runs `epochs` passes over the training names. It trains where the run says (Runtime:
device, precision) in one process; evaluation and calibration run where the model is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from common.device import CPU, Runtime, module_device
from common.spec import Finetune, ModelSpec
from nmt.names.config import NamesConfig, preset_config
from nmt.names.data import LETTERS, load_names
from nmt.names.model import build_model
from nmt.names.training import evaluate as evaluate_classifier
from nmt.names.training import train

# The cells' two matrices, in every layer and direction
DEFAULT_TARGETS = r"^lstm\.cells(_reverse)?\.\d+\.linear_(ih|hh)$"


@dataclass(frozen=True)
class NamesSpec(ModelSpec):
    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {"smoke": 1, "cpu": 2, "paper": 2}
    FEATURES: ClassVar[frozenset[str]] = frozenset({"device", "precision"})

    def config(self, preset: str) -> NamesConfig:
        return preset_config(preset)

    def dense_epochs(self, cfg: NamesConfig) -> int:
        return cfg.steps  # the names trainer counts steps; see the module docstring

    def load_data(self, cfg: NamesConfig, data_dir: str | None, verify: bool = True):
        from common.datasets import dataset_dir

        folder = dataset_dir(self.dataset, data_dir, verify=verify)
        return load_names(folder, cfg.split, cfg.split_seed)

    def build(self, cfg: NamesConfig, data) -> nn.Module:
        return build_model(cfg, len(data[2]))

    def steps_per_epoch(self, cfg: NamesConfig, data) -> int:
        return max(1, math.ceil(len(data[0]) / cfg.batch_size))

    def workload(self, cfg: NamesConfig, data=None) -> dict[str, int]:
        # one inference classifies one name: T = the mean name length, rounded
        T = round(float(np.mean(data[1].lengths))) if data is not None else 7
        return {"seq_len": max(1, T), "batch": 1}

    def train_dense(
        self,
        model: nn.Module,
        data,
        cfg: NamesConfig,
        train_dir: Path,
        *,
        epochs: int,
        resume: bool,
        runtime: Runtime = CPU,
    ) -> dict[str, Any]:
        # `epochs` is cfg.steps (dense_epochs) and the trainer always resumes from the
        # checkpoint in train_dir: the preset as it is decides both
        train_dir.mkdir(parents=True, exist_ok=True)
        return train(model, data, cfg, run_dir=train_dir, progress=True, device=runtime.device,
                     precision=runtime.precision)  # fmt: skip

    def finetune(
        self, model: nn.Module, data, cfg: NamesConfig, train_dir: Path, ft: Finetune
    ) -> dict[str, Any]:
        # The pipeline's state (ft.state: its event count and records) rides in the trainer's
        # checkpoints; the trainer resumes from train_dir's checkpoint whenever there is one,
        # whatever ft.resume says (a fresh run's train folder holds none: compress.run checks).
        train_dir.mkdir(parents=True, exist_ok=True)
        steps = ft.epochs * self.steps_per_epoch(cfg, data)
        tuned = cfg.replace(
            steps=min(steps, ft.max_steps) if ft.max_steps else steps, lr=cfg.lr * ft.lr_scale
        )
        on_step = ft.on_step
        return train(
            model,
            data,
            tuned,
            callback=None if on_step is None else (lambda step, _m, _loss: on_step(step - 1)),
            run_dir=train_dir,
            progress=True,
            device=ft.runtime.device,
            precision=ft.runtime.precision,
            extra_state=ft.state,
        )

    def evaluate(self, model: nn.Module, data, cfg: NamesConfig) -> dict[str, Any]:
        ev = evaluate_classifier(model, data[1], cfg.eval_batch_size, module_device(model))
        # The tutorial task has no validation split: only the test split is scored.
        return {
            "valid": None,
            "test": ev["accuracy"],
            "test_balanced_accuracy": ev["balanced_accuracy"],
            "spike_rate": ev["spike_rate"],
            "layer_spike_rates": ev["layer_spike_rates"],
        }

    def spike_rates(self, model: nn.Module, data, cfg: NamesConfig) -> dict[str, float]:
        rates: dict[str, float] = {"lstm.cells.0.linear_ih": 1.0 / len(LETTERS)}
        if cfg.cell == "gate":
            ev = evaluate_classifier(model, data[1], cfg.eval_batch_size, module_device(model))
            for i, r in enumerate(ev["layer_spike_rates"] or []):
                rates[f"lstm.cells.{i}.linear_hh"] = float(r)
                if i + 1 < cfg.num_layers:
                    rates[f"lstm.cells.{i + 1}.linear_ih"] = float(r)
        return rates

    def calibration(self, model: nn.Module, data, cfg: NamesConfig) -> tuple[Callable, Iterable]:
        train_set = data[0]
        order = np.random.default_rng(cfg.seed).permutation(len(train_set))
        batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]

        @torch.no_grad()
        def run_batch(idx: np.ndarray) -> None:
            model.eval()
            x, lengths, _ = train_set.batch(idx, module_device(model))
            model(x, lengths)

        return run_batch, batches


NAMES = NamesSpec(
    "names", "names", "accuracy", higher_is_better=True, default_targets=DEFAULT_TARGETS
)
