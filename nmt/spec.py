"""The spiking translator as compress.run sees it (`--model nmt`).

Targets (default) are every SpikingLayer's matrices in the encoder and decoder: the cell's
`linear_ih` / `linear_hh` (the LSTM gates), W_l (`linear`, fed by the spikes) and the mixer W_m
(`mixer`; the encoder's last stack layer has neither, see SpikingLayer); embeddings, attention
and the output projection stay dense, as the language models keep their embedding and decoder
dense. Binary inputs, where the hardware accumulates instead of
multiplying, are W_l's (the layer's spikes, for the spiking kinds) and, for the gate-spiking
cell, `linear_hh`'s (its h is binary); their rates are measured teacher-forced on the test pairs.

Quality is BLEU (sacreBLEU, tokenize="zh", all references): beam search when the preset has a
beam, else greedy. Dense training runs the preset's epochs in `<run>/train/`; a compressed copy
fine-tunes at a tenth of the dense peak learning rate (the dense cosine ends near its minimum,
and restarting at the peak undoes more than a short fine-tune recovers), cosine down to lr_min.

Training runs where the run says (Runtime: device, precision) and, under torchrun, data-parallel
(nmt.training); evaluation, spike rates and calibration run on the device the model is on. The
paper preset's corpus is WMT19 (nmt.data): its training shards are checked by `load_data`, the
validation set (its test split) by the run, as `datasets_for` says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from common.device import CPU, Runtime, module_device
from common.spec import Finetune, ModelSpec
from nmt.data import NMTData, calibration_batches, corpus_datasets, load_data, steps_per_epoch_of
from nmt.evaluation import activity
from nmt.evaluation import evaluate as evaluate_translator
from nmt.presets import TranslatorConfig, get_preset
from nmt.training import build_model, learning_rate, train

FINETUNE_LR_FACTOR = 0.1
CALIBRATION_BATCHES = 16

# Every SpikingLayer's matrices in the encoder and decoder (see the module docstring)
DEFAULT_TARGETS = (
    r"^(encoder|decoder)\.(forward_layer|backward_layer|layers\.\d+)\."
    r"(cell\.linear_(ih|hh)|linear|mixer)$"
)

# Translator.spike_rates() names -> module paths
_LAYER_PATHS = {"encoder.fwd": "encoder.forward_layer", "encoder.bwd": "encoder.backward_layer"}


def _layer_path(name: str) -> str:
    if name in _LAYER_PATHS:
        return _LAYER_PATHS[name]
    side, index = name.split(".")
    return f"{side}.layers.{index}"


@dataclass(frozen=True)
class NMTSpec(ModelSpec):
    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {"smoke": 1, "cpu": 1, "paper": 1}
    FINETUNE_STEPS: ClassVar[dict[str, int]] = {"smoke": 0, "cpu": 300, "paper": 0}
    FEATURES: ClassVar[frozenset[str]] = frozenset(
        {"distill", "lr_rewind", "joint", "l1", "device", "precision", "distributed"}
    )

    # -- configs ---------------------------------------------------------------------------------
    def config(self, preset: str) -> TranslatorConfig:
        return get_preset(preset)

    # -- data and model --------------------------------------------------------------------------
    def datasets_for(self, cfg: TranslatorConfig) -> tuple[str, ...]:
        return corpus_datasets(cfg)

    def load_data(self, cfg: TranslatorConfig, data_dir: str | None, verify: bool = True):
        # nmt.data.load_data resolves and checks the dataset through common.datasets
        return load_data(cfg, data_dir, verify=verify)

    def build(self, cfg: TranslatorConfig, data: NMTData) -> nn.Module:
        return build_model(cfg, data.src_tok.vocab_size, data.tgt_tok.vocab_size)

    def steps_per_epoch(self, cfg: TranslatorConfig, data: NMTData) -> int:
        return steps_per_epoch_of(cfg, data)

    def workload(self, cfg: TranslatorConfig, data: NMTData | None = None) -> dict[str, int]:
        # hwsim takes one sequence length for every layer: the encoder runs over the source and
        # the decoder over the target, so one translation is modelled at their mean test length
        # (tokens with BOS/EOS), batch 1.
        if data is None:
            return {"seq_len": 12, "batch": 1}
        lengths = [len(s) for s in data.test.pair_src] + [len(t) for t in data.test.pair_tgt]
        return {"seq_len": max(1, round(float(np.mean(lengths)))), "batch": 1}

    # -- training --------------------------------------------------------------------------------
    def train_dense(
        self,
        model: nn.Module,
        data: NMTData,
        cfg: TranslatorConfig,
        train_dir: Path,
        *,
        epochs: int,
        resume: bool,
        runtime: Runtime = CPU,
    ) -> dict[str, Any]:
        return train(model, data, cfg, train_dir, resume=resume, epochs=epochs, label="dense",
                     device=runtime.device, precision=runtime.precision)  # fmt: skip

    def dense_max_steps(self, cfg: TranslatorConfig) -> int:
        return cfg.max_steps

    def finetune(
        self, model: nn.Module, data: NMTData, cfg: TranslatorConfig, train_dir: Path, ft: Finetune
    ) -> dict[str, Any]:
        """The dense config unchanged under ft.schedule == "dense" (the joint recipe); else a
        tenth of the dense peak, cosine down to lr_min, or with ft.lr_rewind the last steps of
        the dense run's own schedule (times ft.lr_scale either way)."""
        lr_at = None
        if ft.schedule == "dense":
            tuned = cfg
        else:
            tuned = cfg.replace(
                max_steps=ft.max_steps,
                lr=cfg.lr * FINETUNE_LR_FACTOR,
                lr_min=min(cfg.lr_min, cfg.lr * FINETUNE_LR_FACTOR),
                lr_schedule="cosine",
            )
            if ft.lr_rewind:
                lr_at = self._rewound_lr(cfg, data, tuned, ft)
        on_step = ft.on_step
        return train(
            model,
            data,
            tuned,
            train_dir,
            callback=None if on_step is None else (lambda step, _m: on_step(step - 1)),
            resume=ft.resume,
            epochs=ft.epochs,
            extra_state=ft.state,
            lr_scale=ft.lr_scale,
            lr_at=lr_at,
            distill=ft.distill,
            penalty=ft.penalty,
            label="fine-tune",
            device=ft.runtime.device,
            precision=ft.runtime.precision,
        )

    def _rewound_lr(self, dense: TranslatorConfig, data: NMTData, tuned: TranslatorConfig,
                    ft: Finetune):  # fmt: skip
        """Fine-tuning step j of k takes the dense run's rate at its step n - k + j (Renda,
        Frankle and Carbin's learning-rate rewinding), times ft.lr_scale."""
        per_epoch = steps_per_epoch_of(dense, data)

        def total(c: TranslatorConfig, epochs: int) -> int:
            n = epochs * per_epoch
            return min(n, c.max_steps) if c.max_steps else n

        n, k = total(dense, dense.epochs), total(tuned, ft.epochs)

        def lr_at(step: int) -> float:
            s = min(max(n - k + step, 0), n - 1)
            return ft.lr_scale * learning_rate(dense, s, n, per_epoch)

        return lr_at

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, model: nn.Module, data: NMTData, cfg: TranslatorConfig) -> dict[str, Any]:
        ev = evaluate_translator(model, data, cfg, module_device(model), splits=("valid", "test"))
        out: dict[str, Any] = {"valid": ev["quality"]["valid"], "test": ev["quality"]["test"]}
        for split in ("valid", "test"):
            r = ev[split]
            for key in ("bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam", "loss"):
                if key in r:
                    out[f"{split}_{key}"] = r[key]
        out["bleu_signature"] = ev["test"]["bleu_signature"]
        out["decoding"] = f"beam {cfg.beam}" if cfg.beam > 1 else "greedy"
        if "length_alpha" in ev:
            out["length_alpha"] = ev["length_alpha"]
        out["spike_rates"] = ev["spike_rates"]
        out["macs_per_token"] = ev["macs_per_token"]
        out["acs_per_token"] = ev["acs_per_token"]
        out["samples"] = ev["test"]["samples"][:4]
        return out

    def spike_rates(self, model: nn.Module, data: NMTData, cfg: TranslatorConfig) -> dict:
        if cfg.kind == "analog":
            return {}
        rates = activity(model, data.test, cfg, module_device(model))["spike_rates"]
        out: dict[str, float] = {}
        layers = model.spiking_layers()
        for name, rate in rates.items():
            path = _layer_path(name)
            if layers[name].has_output:
                out[f"{path}.linear"] = float(rate)  # W_l multiplies the spikes
            if cfg.kind == "gate":
                out[f"{path}.cell.linear_hh"] = float(rate)  # binary h into the recurrence
        return out

    def calibration(
        self, model: nn.Module, data: NMTData, cfg: TranslatorConfig
    ) -> tuple[Callable, Iterable]:
        batches = calibration_batches(data, cfg, CALIBRATION_BATCHES, module_device(model))

        @torch.no_grad()
        def run_batch(batch) -> None:
            model.eval()
            model(*batch)

        return run_batch, batches


NMT = NMTSpec("nmt", "cmn_eng", "bleu", higher_is_better=True, default_targets=DEFAULT_TARGETS)
