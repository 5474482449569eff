"""Model name -> "module:attr" of its ModelSpec, imported only when that model is asked for.

A ModelSpec is what `compress.run` needs of a model family; each family implements it next to its
own code (lm/spec.py, nmt/...), so compress never imports a family it does not run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from torch import nn

MODELS: dict[str, str] = {
    "ptbc": "lm.spec:PTBC",
    "ptbw": "lm.spec:PTBW",
    "enwik8": "lm.spec:ENWIK8",
    "names": "nmt.names_spec:NAMES",
    "nmt": "nmt.spec:NMT",
}

PRESETS = ("smoke", "cpu", "paper")


class ModelSpec(Protocol):
    """What the compression run needs of a model family. `cfg` is the family's own frozen
    dataclass config; `data` is whatever `load_data` returns. Optional members:
    `default_targets` (a regex; without it the LSTM fused matrices are the targets) and
    `spike_rates(model, data, cfg) -> {target name or "<name>/recurrent": rate}` for layers
    whose inputs are binary."""

    name: str
    dataset: str  # the compress.datasets name its data comes from
    metric: str  # bpc | ppl | accuracy | bleu
    higher_is_better: bool

    def dense_epochs(self, cfg: Any) -> int: ...

    def finetune_epochs(self, cfg: Any) -> int:
        """Default fine-tuning epochs of a compressed run at this preset (an optional
        `finetune_steps(cfg)` gives the default cap on its optimizer steps)."""
        ...

    def config(self, preset: str) -> Any: ...

    def config_from_dict(self, data: dict[str, Any]) -> Any: ...

    def config_to_dict(self, cfg: Any) -> dict[str, Any]: ...

    def load_data(self, cfg: Any, data_dir: str | None, verify: bool = True) -> Any: ...

    def build(self, cfg: Any, data: Any) -> nn.Module: ...

    def train(
        self,
        model: nn.Module,
        data: Any,
        cfg: Any,
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
        """Train `epochs` epochs (at most `max_steps` optimizer steps in all when > 0) with
        checkpoints in run_dir (resuming when asked); calls on_step(global_step) after every
        optimizer step. `extra_state` has state_dict / load_state_dict and is saved and restored
        with the checkpoint. The result may hold "quality", what `evaluate` would return for the
        trained model, when training already scored it (the dense stage then skips `evaluate`)."""
        ...

    def steps_per_epoch(self, cfg: Any, data: Any) -> int: ...

    def evaluate(self, model: nn.Module, data: Any, cfg: Any) -> dict[str, Any]:
        """{"valid": x, "test": y} in the spec's metric (None where a split does not exist),
        plus any other figures worth recording."""
        ...

    def calibration(self, model: nn.Module, data: Any, cfg: Any) -> tuple[Callable, Iterable]:
        """(run_batch, batches) for activation range calibration on training data."""
        ...

    def workload(self, cfg: Any, data: Any = None) -> dict[str, int]:
        """{"seq_len": T, "batch": B} of one inference, for hwsim."""
        ...


def get_spec(name: str) -> ModelSpec:
    try:
        target = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
