"""Frozen configs of the passes; they travel in a run's config.json (lstmpack.run.config's
RunConfig holds one of each)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.configs import ConfigMixin, check_max_paths
from compress.schedule import SCHEDULES

STRATEGIES = ("greedy", "reference")
QUANT_MODES = ("off", "ptq", "qat")
# The widths the quantizers implement (compress.parametrize: 2..16 bits) and 32, which means
# float (the quantizer off); the packed format holds the same set (common.packed.arrays).
FLOAT_BITS = 32
QUANT_BITS = (*range(2, 17), FLOAT_BITS)


def check_bits(value: object, flag: str) -> int:
    """`value` when it is a width the quantizers take (2..16, or 32 for float); else ValueError
    naming `flag`, found before any training rather than when the quantizer is built."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in QUANT_BITS:
        raise ValueError(f"{flag} must be in 2..16, or 32 for float; got {value!r}")
    return value


# How a selection ranks weights: |w|, or on calibration inputs X (H = X X^T) the OBS saliency
# w^2 / [H^-1]_jj or the activation-weighted magnitude w^2 H_jj (Wanda's |w| ||x_j||, squared)
KEEPS = ("magnitude", "saliency", "activation")
# Where a selection's threshold applies: the whole matrix, each gate block, or each row
BALANCES = ("none", "gate", "row")


def check_selection(keep: str, balance: str) -> None:
    """The --keep and --balance values every selection (prune, combine) accepts."""
    if keep not in KEEPS:
        raise ValueError(f"--keep must be one of {', '.join(KEEPS)}; got {keep!r}")
    if balance not in BALANCES:
        raise ValueError(f"--balance must be one of {', '.join(BALANCES)}; got {balance!r}")


@dataclass(frozen=True)
class PruneConfig(ConfigMixin):
    """Magnitude pruning to `final_sparsity` over `n_events` events on a schedule."""

    final_sparsity: float = 0.0
    initial_sparsity: float = 0.0
    schedule: str = "cubic"
    n_events: int = 4
    scope: str = "layer"  # "layer": each target to the rate; "global": one threshold for all
    gate_aware: bool = False  # LSTM targets: rank the four gate blocks separately
    keep: str = "magnitude"  # KEEPS
    balance: str = "none"  # BALANCES; "gate" is gate_aware

    def __post_init__(self) -> None:
        check_selection(self.keep, self.balance)
        if self.scope == "global" and self.balance != "none":
            raise ValueError(
                f"a global prune scope has one threshold; got balance {self.balance!r}"
            )
        for name in ("final_sparsity", "initial_sparsity"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {v}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}"
            )
        if self.n_events < 1:
            raise ValueError(f"n_events must be >= 1; got {self.n_events}")
        if self.scope not in ("layer", "global"):
            raise ValueError(f"prune scope must be 'layer' or 'global'; got {self.scope!r}")


@dataclass(frozen=True)
class CombineConfig(ConfigMixin):
    """Column combining at every prune event (Kung, McDanel and Zhang, ASPLOS'19).

    Before grouping, each target is magnitude-pruned to progress * prune_factor * (1 - 1/alpha)
    (the published recipe: a matrix of density about 1/alpha packs into about cols/alpha groups).
    """

    max_paths: int = 1
    gamma: float = 1.75
    section_size: int | None = None
    strategy: str = "greedy"
    prune_factor: float = 1.0
    keep: str = "magnitude"  # KEEPS: ranks the pre-prune and the weight kept per (row, group)
    balance: str = "none"  # BALANCES: where the pre-prune's threshold applies

    def __post_init__(self) -> None:
        check_max_paths(self.max_paths)
        check_selection(self.keep, self.balance)
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0; got {self.gamma!r}")
        if math.isinf(self.gamma):  # a budget of every weight: the groups would mean nothing
            raise ValueError(f"gamma must be finite; got {self.gamma!r}")
        if self.section_size is not None and self.section_size < 1:
            raise ValueError(f"section_size must be >= 1 or None; got {self.section_size!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}"
            )
        if not 0.0 <= self.prune_factor <= 1.0:
            raise ValueError(f"prune_factor must be in [0, 1]; got {self.prune_factor!r}")

    @property
    def combine_sparsity(self) -> float:
        return self.prune_factor * (1.0 - 1.0 / self.max_paths)


@dataclass(frozen=True)
class QuantConfig(ConfigMixin):
    """Symmetric per-row weight quantization and calibrated activation quantization."""

    mode: str = "ptq"  # off | ptq (calibrate, no retraining) | qat (fine-tune with fake quant)
    bits: int = 8  # 32 means off
    act_bits: int = 8  # 32 means off
    calib_batches: int = 8

    def __post_init__(self) -> None:
        if self.mode not in QUANT_MODES:
            raise ValueError(f"--quant must be one of {', '.join(QUANT_MODES)}; got {self.mode!r}")
        for name in ("bits", "act_bits"):
            check_bits(getattr(self, name), f"--{name.replace('_', '-')}")
        if self.calib_batches < 1:
            raise ValueError(f"calib_batches must be >= 1; got {self.calib_batches}")

    @property
    def weights_on(self) -> bool:
        return self.mode != "off" and self.bits < 32

    @property
    def acts_on(self) -> bool:
        return self.mode != "off" and self.act_bits < 32
