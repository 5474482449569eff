"""ModelSpec: what a compression run needs of a model family, and the parts every family shares.

Each family (lm/spec.py, nmt/spec.py, nmt/names/spec.py) subclasses `ModelSpec` beside its own
code, so the run layer reaches a model only through the registry and never imports a family it
does not run. `cfg` below is the family's own frozen dataclass config; `data` is whatever its
`load_data` returns.

Where a family trains is the run's choice, handed down as a `common.device.Runtime` (device and
precision): `Finetune.runtime`, and `train_dense(..., runtime=...)` for a family whose FEATURES
name "device" or "precision" (the run passes it to those only, and refuses another device or
precision for the others, so a spec written before it existed keeps working on the CPU). The run has put the
model on that device before it calls `train_dense`, `finetune`, `evaluate`, `calibration` and
`spike_rates`: those run where the model is. Under torchrun ("distributed" in FEATURES) every
rank calls the same methods; the family's trainer takes its share of each batch and only rank 0
writes (common.distributed).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from common.device import CPU, Runtime
from common.distill import Distill

SCHEDULES = ("finetune", "dense")  # Finetune.schedule
# What a family's FEATURES may name (beyond the recipe's flags): "device", it trains, evaluates
# and calibrates on the device its model is on (--device other than cpu); "precision", it honours
# Runtime.precision (--precision bf16 / fp16); "distributed", it trains data-parallel when a
# torchrun process group is started, with rank 0 alone writing (torchrun ... -m compress.run)
RUNTIME_FEATURES = ("device", "precision", "distributed")
LR_DECAYS = ("constant", "cosine")  # Finetune.lr_decay


@dataclass(frozen=True)
class Finetune:
    """What the compressed stage asks of a fine-tune of the model that carries the passes."""

    epochs: int
    resume: bool  # continue from the checkpoint in the train folder when there is one
    state: Any  # has state_dict / load_state_dict (the pipeline): saved with every checkpoint
    on_step: Callable[[int], object] | None = None  # after each optimizer step, its 0-based index
    lr_scale: float = 1.0  # fine-tuning lr / the family's default fine-tuning lr
    max_steps: int = 0  # cap on all optimizer steps; 0 = the whole epochs
    # "finetune": the family's short fine-tune (a constant rate, or the rewound one below);
    # "dense": the dense config's own schedule, unchanged (steps, lr curve, dropouts), from the
    # first step: the joint recipe, which trains a fresh model under the passes
    schedule: str = "finetune"
    # follow the last k steps of the dense run's own lr schedule (k = this fine-tune's steps)
    # instead of a constant rate (Renda, Frankle and Carbin, ICLR'20)
    lr_rewind: bool = False
    # the short fine-tune's rate: "constant", or "cosine" from it down to the dense run's floor
    # (lr_min) over the fine-tune's steps; only families with "finetune_schedule" in FEATURES
    # honour "cosine"
    lr_decay: str = "constant"
    distill: Distill | None = None  # add W T^2 KL(teacher || student) to the loss
    # called before every optimizer step's backward; a tensor is added to the loss (the L1
    # penalty on the targeted weights until the last event), None adds nothing
    penalty: Callable[[], torch.Tensor | None] | None = None
    writer: Any = None  # a TensorBoard SummaryWriter for the trainer's scalars, or None
    # where to train: the model is on runtime.device already; precision of the forward passes
    runtime: Runtime = CPU

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}"
            )
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(
                f"lr_decay must be one of {', '.join(LR_DECAYS)}; got {self.lr_decay!r}"
            )


@dataclass(frozen=True)
class ModelSpec(abc.ABC):
    """A model family as `compress.run` sees it.

    `default_targets` is a regex over module names; None means the LSTM fused matrices.
    Subclasses set FINETUNE_EPOCHS / FINETUNE_STEPS per preset (the defaults of a compressed
    run's fine-tune) and implement the abstract methods."""

    name: str
    # the dataset catalog's name of its data (found and verified before anything is written), or
    # None: the spec's load_data finds and checks its own files (a user's model)
    dataset: str | None
    metric: str  # bpc | ppl | accuracy | bleu
    higher_is_better: bool = False
    default_targets: str | None = None

    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {}
    FINETUNE_STEPS: ClassVar[dict[str, int]] = {}
    # what this family's `finetune` honours beyond the plain fine-tune, of "joint" (schedule
    # "dense"), "distill", "lr_rewind", "l1" (penalty) and
    # "finetune_schedule" (Finetune.lr_decay "cosine"), and where it can train, of
    # RUNTIME_FEATURES ("device", "precision", "distributed"): compress.run refuses the flags of
    # the others before anything is written
    # the recipe flags a posthoc run of this family takes when they are not given (keys: distill,
    # finetune_schedule, lr_scale, prune_factor; values as typed on the command line): the best
    # measured recipe (BENCHMARKS.md); the run layer fills them in before its checks
    POSTHOC_DEFAULTS: ClassVar[dict[str, Any]] = {}
    FEATURES: ClassVar[frozenset[str]] = frozenset()

    # -- configs ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def config(self, preset: str) -> Any:
        """The family's config at a preset (smoke, cpu, paper)."""

    def config_to_dict(self, cfg: Any) -> dict[str, Any]:
        return cfg.to_dict()

    def dense_epochs(self, cfg: Any) -> int:
        return cfg.epochs

    def finetune_epochs(self, cfg: Any) -> int:
        return self.FINETUNE_EPOCHS.get(cfg.preset, 1)

    def finetune_steps(self, cfg: Any) -> int:
        return self.FINETUNE_STEPS.get(cfg.preset, 0)

    def check_processes(self, cfg: Any, processes: int) -> None:
        """ValueError when `cfg` cannot train data-parallel over `processes` torchrun processes
        (say, a batch that does not split evenly); called before anything is written, for a
        family with "distributed" in FEATURES. Default: nothing to refuse."""
        return None

    def dense_max_steps(self, cfg: Any) -> int:
        """The cap on the dense run's optimizer steps (0: its whole epochs); the joint recipe
        trains as long as the dense run."""
        return 0

    # -- data and model --------------------------------------------------------------------------
    def datasets_for(self, cfg: Any) -> tuple[str, ...]:
        """The catalog datasets `cfg` reads, which the run finds and verifies before anything is
        written, the first being its training data (default: the spec's `dataset`). Files the
        catalog does not pin (a user's, with `dataset` None) `load_data` finds and checks."""
        return () if self.dataset is None else (self.dataset,)

    @abc.abstractmethod
    def load_data(self, cfg: Any, data_dir: str | None, verify: bool = True) -> Any: ...

    @abc.abstractmethod
    def build(self, cfg: Any, data: Any) -> nn.Module: ...

    @abc.abstractmethod
    def steps_per_epoch(self, cfg: Any, data: Any) -> int: ...

    @abc.abstractmethod
    def workload(self, cfg: Any, data: Any = None) -> dict[str, int]:
        """{"seq_len": T, "batch": B} of one inference, for hwsim."""

    # -- training --------------------------------------------------------------------------------
    @abc.abstractmethod
    def train_dense(
        self, model: nn.Module, data: Any, cfg: Any, train_dir: Path, *, epochs: int, resume: bool
    ) -> dict[str, Any]:
        """Train `epochs` epochs with checkpoints in train_dir. The result may hold "quality",
        what `evaluate` would return for the trained model, when training already scored it (the
        dense stage then skips `evaluate`). A family with "device" or "precision" in FEATURES
        also takes `runtime: Runtime` (keyword, default common.device.CPU)."""

    @abc.abstractmethod
    def finetune(
        self, model: nn.Module, data: Any, cfg: Any, train_dir: Path, ft: Finetune
    ) -> dict[str, Any]:
        """Fine-tune the compressed model as `ft` says, saving `ft.state` with every checkpoint
        and restoring it on resume, so that a killed run continues to the same numbers."""

    # -- evaluation ------------------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, model: nn.Module, data: Any, cfg: Any) -> dict[str, Any]:
        """{"valid": x, "test": y} in the spec's metric (None where a split does not exist),
        plus any other figures worth recording."""

    @abc.abstractmethod
    def calibration(self, model: nn.Module, data: Any, cfg: Any) -> tuple[Callable, Iterable]:
        """(run_batch, batches) for activation range calibration on training data."""

    def spike_rates(self, model: nn.Module, data: Any, cfg: Any) -> dict[str, float] | None:
        """{target name or "<name>/recurrent": rate} for targets whose inputs are binary, which
        the hardware accumulates instead of multiplying; None when no input is."""
        return None
