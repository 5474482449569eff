"""WeightTarget: the 2-D matrix the hardware multiplies, found in any PyTorch model.

An LSTM layer of ours (a module with `lstmpack_kind = "lstm"`, a fused `weight` of shape
(4H, in + R) = [W_ih | W_hh], gate rows i, f, g, o, R = its `proj_size` or else H) is one target
whose columns split into the input projection and the recurrent part; a GRU layer of ours
(`lstmpack_kind = "gru"`, (3H, in + H), gate rows r, z, n) likewise. The two parts stay apart
because a GRU's n gate multiplies only the recurrent part by r: groups never cross the split, so
the layer computes each part on its own. An LSTM's projection W_hr (`lstmpack_kind = "proj"`,
(R, H)) is a target of its own; an `nn.Linear` is a target of kind "linear"; an `nn.Embedding`
only when asked. A plain `nn.LSTM` / `nn.GRU` is refused (`lstmpack.convert` swaps them for ours):
parametrizations on its own weights can silently stop them training (pytorch/pytorch#65688).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

KINDS = ("lstm", "gru", "proj", "linear", "embedding")
# the recurrent layers: what a run compresses when no --targets is given
DEFAULT_KINDS = ("lstm", "gru", "proj")
GATES = {"lstm": 4, "gru": 3}  # gate blocks of a recurrent layer's rows


@dataclass(frozen=True)
class WeightTarget:
    name: str  # module path in the model, e.g. "rnns.0"
    kind: str  # KINDS
    rows: int
    cols: int
    col_splits: tuple[int, ...]  # groups never cross these column boundaries
    row_blocks: tuple[
        int, ...
    ]  # gate blocks of a recurrent layer ([0, H, ..., 4H]), else [0, rows]
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


def _check_layout(name: str, module: nn.Module, kind: str, shape: tuple[int, int]) -> None:
    """ValueError naming the module when its weight is not the layout its kind promises: the
    passes would mask the wrong gate blocks and columns."""
    got = tuple(module.weight.shape)
    if got != shape:
        raise ValueError(
            f"module {name!r} ({type(module).__name__}) is a {kind} layer of its sizes, whose "
            f"weight the passes take as {shape}, but its weight is {got}"
        )


def _target_of(name: str, module: nn.Module) -> WeightTarget | None:
    kind = getattr(module, "lstmpack_kind", None)
    if kind in GATES:
        i, h = int(module.input_size), int(module.hidden_size)
        r = int(getattr(module, "proj_size", 0) or h)  # the width of the state fed back
        gates = GATES[kind]
        _check_layout(name, module, kind, (gates * h, i + r))  # [W_ih | W_hh], gate rows
        return WeightTarget(
            name=name,
            kind=kind,
            rows=gates * h,
            cols=i + r,
            col_splits=(0, i, i + r),
            row_blocks=tuple(k * h for k in range(gates + 1)),
            input_size=i,
            hidden_size=h,
            module=module,
        )
    if kind == "proj":
        r, c = int(module.proj_size), int(module.hidden_size)
        _check_layout(name, module, kind, (r, c))
        return WeightTarget(name, "proj", r, c, (0, c), (0, r), module=module)
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
    recurrent matrix (LSTM and GRU fused matrices, LSTM projections) is a target (decoders and
    embeddings are left alone by default). A tied
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
            way_out = (
                "an nn.RNN has no maskable equivalent: leave it out of --targets"
                if isinstance(module, nn.RNN)
                else "convert the model first with lstmpack.convert(model), which swaps nn.LSTM "
                "and nn.GRU for maskable equivalents"
            )
            raise ValueError(
                f"module {name!r} is a plain torch.nn.{type(module).__name__}: its weights cannot "
                f"be masked safely (pytorch/pytorch#65688); {way_out}"
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
        _refuse_containers(model, rx, pattern)
        raise ValueError(
            f"--targets {pattern!r} matches no {'/'.join(kinds)} weight; module names: "
            + ", ".join(n for n, m in model.named_modules() if _target_of(n, m) is not None)
        )
    return out


def _refuse_containers(model: nn.Module, rx: re.Pattern | None, pattern: str) -> None:
    """ValueError when --targets names a module that holds targets without being one (an
    lstmpack.rnn.GRU / LSTM stack, whose layers and directions are the matrices), naming them."""
    for name, module in model.named_modules():
        if not name or rx is None or not rx.search(name) or _target_of(name, module) is not None:
            continue
        inner = [f"{name}.{n}" for n, m in module.named_modules() if n and _target_of(n, m)]
        if inner:
            raise ValueError(
                f"--targets {pattern!r} names module {name!r}, which holds targets but is not "
                f"one: name its layers instead ({', '.join(inner)}), e.g. "
                f"--targets '^{re.escape(name)}\\.'"
            )
