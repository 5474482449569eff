"""WeightTarget: the 2-D matrix the hardware multiplies, found in any PyTorch model.

An LSTM layer of ours (a module with `lstmpack_kind = "lstm"`, a fused `weight` of shape
(4H, in + H) = [W_ih | W_hh], gate rows i, f, g, o) is one target whose columns split into the
input projection and the recurrent part; an `nn.Linear` is a target of kind "linear"; an
`nn.Embedding` only when asked. A plain `nn.LSTM` is refused: parametrizations on its own weights
can silently stop them training (pytorch/pytorch#65688).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

KINDS = ("lstm", "linear", "embedding")
DEFAULT_KINDS = ("lstm",)


@dataclass(frozen=True)
class WeightTarget:
    name: str  # module path in the model, e.g. "rnns.0"
    kind: str  # lstm | linear | embedding
    rows: int
    cols: int
    col_splits: tuple[int, ...]  # groups never cross these column boundaries
    row_blocks: tuple[int, ...]  # gate blocks for an LSTM ([0, H, 2H, 3H, 4H]), else [0, rows]
    input_size: int | None = None
    hidden_size: int | None = None
    module: nn.Module = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    param: str = "weight"

    def weight(self) -> torch.Tensor:
        """The effective weight, every registered parametrization applied."""
        return getattr(self.module, self.param)

    def raw(self) -> torch.Tensor:
        """The trained parameter underneath the parametrizations."""
        if parametrize.is_parametrized(self.module, self.param):
            return getattr(self.module.parametrizations, self.param).original
        return getattr(self.module, self.param)


def _target_of(name: str, module: nn.Module) -> WeightTarget | None:
    if getattr(module, "lstmpack_kind", None) == "lstm":
        i, h = int(module.input_size), int(module.hidden_size)
        return WeightTarget(
            name=name,
            kind="lstm",
            rows=4 * h,
            cols=i + h,
            col_splits=(0, i, i + h),
            row_blocks=(0, h, 2 * h, 3 * h, 4 * h),
            input_size=i,
            hidden_size=h,
            module=module,
        )
    if isinstance(module, nn.Linear):
        r, c = module.out_features, module.in_features
        return WeightTarget(name, "linear", r, c, (0, c), (0, r), module=module)
    if isinstance(module, nn.Embedding):
        # The matrix the hardware multiplies is E^T (a one-hot input selects a column).
        r, c = module.embedding_dim, module.num_embeddings
        return WeightTarget(name, "embedding", c, r, (0, r), (0, c), module=module)
    return None


def find_targets(
    model: nn.Module,
    pattern: str | None = None,
    kinds: tuple[str, ...] | None = None,
) -> list[WeightTarget]:
    """The targets of `model`, in module order.

    `pattern` (a regex searched in the module path) and `kinds` both filter; with neither, every
    LSTM fused matrix is a target (decoders and embeddings are left alone by default). A tied
    weight (one Parameter reached from two modules) is a target once, under its first name.
    """
    kinds = tuple(kinds) if kinds is not None else (KINDS if pattern else DEFAULT_KINDS)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"target kind must be one of {', '.join(KINDS)}; got {k!r}")
    try:
        rx = re.compile(pattern) if pattern else None
    except re.error as e:
        raise ValueError(f"--targets {pattern!r} is not a valid regular expression: {e}") from None
    out: list[WeightTarget] = []
    seen: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.LSTM | nn.GRU | nn.RNN) and (rx is None or rx.search(name)):
            raise ValueError(
                f"module {name!r} is a plain torch.nn.{type(module).__name__}: its weights cannot "
                f"be masked safely (pytorch/pytorch#65688); use lm.lstm.MaskableLSTM or the nmt "
                f"cells instead"
            )
        t = _target_of(name, module)
        if t is None or t.kind not in kinds or (rx is not None and not rx.search(name)):
            continue
        key = id(t.raw())
        if key in seen:
            continue
        seen.add(key)
        out.append(t)
    if pattern and not out:
        raise ValueError(
            f"--targets {pattern!r} matches no {'/'.join(kinds)} weight; module names: "
            + ", ".join(n for n, m in model.named_modules() if _target_of(n, m) is not None)
        )
    return out
