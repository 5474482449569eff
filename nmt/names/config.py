"""The surname classifier's configuration: `NamesConfig`, its choices and the presets."""

from __future__ import annotations

from dataclasses import dataclass

from common.configs import ConfigMixin, from_dict

__all__ = [
    "CELLS",
    "LOSSES",
    "PRESETS",
    "READOUTS",
    "SAMPLINGS",
    "SCHEDULES",
    "SPLITS",
    "NamesConfig",
    "preset_config",
]

CELLS = ("gate", "output", "analog")
SPLITS = ("stratified", "tutorial")
LOSSES = ("ce", "softmax_mse")
SAMPLINGS = ("shuffle", "class_uniform")
READOUTS = ("last", "mean")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class NamesConfig(ConfigMixin):
    """Everything that decides a run; stored as config.json beside its results."""

    preset: str = "cpu"
    cell: str = "gate"  # gate | output | analog
    split: str = "stratified"  # stratified | tutorial
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0  # between layers (num_layers > 1 only)
    surrogate: str = ""  # "" = the cell's own default: erf (gate), spikingparrot (output)
    alpha: float = 2.0  # Erf / ATan sharpness
    clamp: bool = True  # gate cell: clamp c to <= 1 (spikingjelly >= 2.0)
    threshold: float = 1.0  # output cell: initial theta
    readout: str = "last"  # last: the output at each name's last letter; mean: over letters
    loss: str = "ce"  # ce | softmax_mse (the tutorial's)
    sampling: str = "shuffle"  # shuffle: epochs of length-bucketed batches; class_uniform
    batch_size: int = 64
    steps: int = 2000
    lr: float = 3e-3
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max grad norm; 0 = off
    seed: int = 0
    split_seed: int = 0
    eval_batch_size: int = 2048
    eval_every: int = 0  # steps between test evaluations logged to TensorBoard; 0 = end only
    checkpoint_every: int = 500
    threads: int = 0  # its own CLI's torch threads (0: torch's default); not compress.run's

    def __post_init__(self) -> None:
        choices = {
            "cell": CELLS,
            "split": SPLITS,
            "loss": LOSSES,
            "sampling": SAMPLINGS,
            "readout": READOUTS,
            "lr_schedule": SCHEDULES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not allowed; choose one of "
                    f"{', '.join(allowed)}"
                )
        if self.surrogate not in ("", "erf", "atan", "spikingparrot"):
            raise ValueError(
                f"surrogate={self.surrogate!r}; choose erf, atan, spikingparrot or '' (default)"
            )
        for name in ("hidden_size", "num_layers", "batch_size", "steps", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("eval_every", "checkpoint_every", "threads"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def cell_surrogate(self) -> str:
        if self.surrogate:
            return self.surrogate
        return "spikingparrot" if self.cell == "output" else "erf"

    def run_id(self) -> str:
        return f"{self.preset}-{self.cell}-{self.split}-seed{self.seed}"


PRESETS: dict[str, dict] = {
    # Seconds: a tiny model for tests and `compress.run --model names` smoke runs.
    "smoke": dict(hidden_size=32, steps=300, batch_size=64, lr=1e-2, checkpoint_every=0),
    # Minutes on 2 CPU cores: length-bucketed batches, cross-entropy, Adam, cosine decay.
    "cpu": dict(),
    # The tutorial's recipe: one name per step drawn class-uniformly, softmax + MSE, Adam
    # 1e-4, 1M steps (320 minutes in the tutorial).
    "paper": dict(
        batch_size=1,
        steps=1_000_000,
        lr=1e-4,
        lr_schedule="constant",
        loss="softmax_mse",
        sampling="class_uniform",
        grad_clip=0.0,
        eval_every=100_000,
        checkpoint_every=20_000,
    ),
}


def preset_config(preset: str = "cpu", **overrides) -> NamesConfig:
    """The named preset with `overrides` (NamesConfig fields) applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown names preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return from_dict(NamesConfig, {**PRESETS[preset], **overrides, "preset": preset})
