"""The spiking surname classifier as compress.run sees it (`--model names`).

Targets are the cells' `linear_ih` / `linear_hh` matrices. Their inputs are binary where the
hardware can accumulate instead of multiply: the one-hot letters (rate 1/58) into every first-layer
`linear_ih`, and the gate-spiking cell's binary h into `linear_hh` (its measured spike rate).
The names trainer counts optimizer steps, not epochs: dense training runs the preset's `steps`,
fine-tuning runs `epochs` passes over the training names.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nmt import names as N

FINETUNE_EPOCHS = {"smoke": 1, "cpu": 2, "paper": 2}


@dataclass(frozen=True)
class NamesSpec:
    name: str = "names"
    dataset: str = "names"
    metric: str = "accuracy"
    higher_is_better: bool = True
    default_targets: str = r"^lstm\.cells(_reverse)?\.\d+\.linear_(ih|hh)$"

    def config(self, preset: str) -> N.NamesConfig:
        return N.preset_config(preset)

    def config_from_dict(self, data: dict[str, Any]) -> N.NamesConfig:
        known = {f.name for f in dataclasses.fields(N.NamesConfig)}
        bad = sorted(set(data) - known)
        if bad:
            raise ValueError(f"unknown NamesConfig field(s) {bad}; known: {sorted(known)}")
        return N.NamesConfig(**data)

    def config_to_dict(self, cfg: N.NamesConfig) -> dict[str, Any]:
        return dataclasses.asdict(cfg)

    def dense_epochs(self, cfg: N.NamesConfig) -> int:
        return cfg.steps  # the names trainer counts steps; see the module docstring

    def finetune_epochs(self, cfg: N.NamesConfig) -> int:
        return FINETUNE_EPOCHS.get(cfg.preset, 1)

    def load_data(self, cfg: N.NamesConfig, data_dir: str | None, verify: bool = True):
        from common.datasets import dataset_dir

        folder = dataset_dir(self.dataset, data_dir, verify=verify)
        return N.load_names(folder, cfg.split, cfg.split_seed)

    def build(self, cfg: N.NamesConfig, data) -> nn.Module:
        return N.build_model(cfg, len(data[2]))

    def steps_per_epoch(self, cfg: N.NamesConfig, data) -> int:
        return max(1, math.ceil(len(data[0]) / cfg.batch_size))

    def workload(self, cfg: N.NamesConfig, data=None) -> dict[str, int]:
        # one inference classifies one name: T = the mean name length, rounded
        T = round(float(np.mean(data[1].lengths))) if data is not None else 7
        return {"seq_len": max(1, T), "batch": 1}

    def train(
        self,
        model: nn.Module,
        data,
        cfg: N.NamesConfig,
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
        train_dir = Path(run_dir) / "train"
        train_dir.mkdir(parents=True, exist_ok=True)
        if on_step is None:
            return N.train(model, data, cfg, run_dir=train_dir, progress=True)
        steps = epochs * self.steps_per_epoch(cfg, data)
        ft = dataclasses.replace(
            cfg, steps=min(steps, max_steps) if max_steps else steps, lr=cfg.lr * lr_scale
        )
        return N.train(
            model,
            data,
            ft,
            callback=lambda step, _m, _loss: on_step(step - 1),
            run_dir=train_dir,
            progress=True,
        )

    def evaluate(self, model: nn.Module, data, cfg: N.NamesConfig) -> dict[str, Any]:
        ev = N.evaluate(model, data[1], cfg.eval_batch_size)
        # The tutorial task has no validation split: only the test split is scored.
        return {
            "valid": None,
            "test": ev["accuracy"],
            "test_balanced_accuracy": ev["balanced_accuracy"],
            "spike_rate": ev["spike_rate"],
            "layer_spike_rates": ev["layer_spike_rates"],
        }

    def spike_rates(self, model: nn.Module, data, cfg: N.NamesConfig) -> dict[str, float]:
        rates: dict[str, float] = {"lstm.cells.0.linear_ih": 1.0 / len(N.LETTERS)}
        if cfg.cell == "gate":
            layer_rates = N.evaluate(model, data[1], cfg.eval_batch_size)["layer_spike_rates"]
            for i, r in enumerate(layer_rates or []):
                rates[f"lstm.cells.{i}.linear_hh"] = float(r)
                if i + 1 < cfg.num_layers:
                    rates[f"lstm.cells.{i + 1}.linear_ih"] = float(r)
        return rates

    def calibration(self, model: nn.Module, data, cfg: N.NamesConfig) -> tuple[Callable, Iterable]:
        train = data[0]
        order = np.random.default_rng(cfg.seed).permutation(len(train))
        batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]

        @torch.no_grad()
        def run_batch(idx: np.ndarray) -> None:
            model.eval()
            x, lengths, _ = train.batch(idx)
            model(x, lengths)

        return run_batch, batches


NAMES = NamesSpec()
