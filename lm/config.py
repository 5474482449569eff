"""The one frozen config that builds, trains and evaluates an AWD-LSTM; stored in config.json."""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.configs import ConfigMixin

MODELS = ("ptbc", "ptbw", "enwik8")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class LMConfig(ConfigMixin):
    """Hyperparameters, named as in the published `main.py` where they exist there.

    ConfigMixin gives from_dict / to_dict / replace; to_dict writes `when` and `enwik8_splits`
    as lists (JSON has no tuples) and __post_init__ turns them back into tuples."""

    model: str
    preset: str = "custom"
    # architecture
    emsize: int = 400
    nhid: int = 1150
    nlayers: int = 3
    dropout: float = 0.4
    dropouth: float = 0.3
    dropouti: float = 0.65
    dropoute: float = 0.1
    wdrop: float = 0.5
    # initial forget-gate bias of every LSTM (b_ih + b_hh of the f block); None keeps nn.LSTM's
    # uniform initialisation, as the published models do
    forget_bias: float | None = None
    # objective
    alpha: float = 2.0
    beta: float = 1.0
    # optimisation
    optimizer: str = "sgd"
    lr: float = 30.0
    clip: float = 0.25
    wdecay: float = 1.2e-6
    epochs: int = 8000
    when: tuple[int, ...] = ()
    # "step": constant lr divided by 10 at the `when` epochs (the published schedule); "cosine":
    # per optimizer step, a linear warm-up over `warmup_steps` then a half cosine from lr down to
    # lr_min at the end of the last epoch (progress measured in steps when epochs are
    # step-limited, in training tokens otherwise)
    lr_schedule: str = "step"
    lr_min: float = 0.0
    warmup_steps: int = 0
    nonmono: int = 5
    batch_size: int = 80
    bptt: int = 70
    seed: int = 1111
    # evaluation: the published code uses 10 for valid, 1 for test
    eval_batch_size: int = 10
    test_batch_size: int = 1
    # limits for quick runs; 0 means no limit (full splits, full epochs)
    max_steps_per_epoch: int = 0
    train_tokens: int = 0
    eval_tokens: int = 0
    # enwik8 split sizes in bytes (train, valid, test)
    enwik8_splits: tuple[int, int, int] = (90_000_000, 5_000_000, 5_000_000)
    # runtime
    threads: int = 0
    log_interval: int = 200

    def __post_init__(self) -> None:
        for name in ("when", "enwik8_splits"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(int(v) for v in value))
        for name, allowed in (
            ("model", MODELS),
            ("optimizer", OPTIMIZERS),
            ("lr_schedule", LR_SCHEDULES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.lr_schedule == "cosine" and self.when:
            raise ValueError(
                f"when={self.when} drops the lr only under lr_schedule='step'; the cosine "
                "schedule sets the lr of every step itself: pass when=() with it"
            )
        for name in ("emsize", "nhid", "nlayers", "batch_size", "bptt", "eval_batch_size",
                     "test_batch_size", "log_interval"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "nonmono", "max_steps_per_epoch", "train_tokens", "eval_tokens",
                     "threads", "warmup_steps"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name in ("alpha", "beta", "clip", "wdecay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.forget_bias is not None and not math.isfinite(self.forget_bias):
            raise ValueError(f"forget_bias must be a finite number or None, got {self.forget_bias}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.lr_min <= self.lr:
            raise ValueError(f"lr_min must be in [0, lr={self.lr}], got {self.lr_min}")
        if len(self.enwik8_splits) != 3 or min(self.enwik8_splits) < 2:
            raise ValueError(f"enwik8_splits must be 3 sizes >= 2, got {self.enwik8_splits}")

    @property
    def metric(self) -> str:
        """ "bpc" for the character/byte models, "ppl" for word-level PTB."""
        return "ppl" if self.model == "ptbw" else "bpc"
