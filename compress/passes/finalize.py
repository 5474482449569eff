"""Pipeline.finalize(): the targets' effective weights as a PackedModel (numpy only).

Each target keeps its kind in the packed format, so hwsim costs what the layer computes: an LSTM
or GRU layer (kinds "lstm", "gru") is an input projection batched over the sequence plus T
recurrent GEMMs (the recurrent columns are proj_size wide for an LSTM with a projection), an
LSTM's projection ("proj") one more GEMM in every step, and the spiking cells' `linear_hh` a
recurrent linear layer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils import parametrize

from common.packed import GATES
from compress.packing import PackedModel, pack_layer
from compress.parametrize import ActQuant, FakeQuant, Mask, quantize_rows
from compress.targets import WeightTarget


def masked_weight(t: WeightTarget) -> torch.Tensor:
    """raw * every mask on the target: the weight before quantization."""
    w = t.raw().detach()
    if parametrize.is_parametrized(t.module, t.param):
        for p in getattr(t.module.parametrizations, t.param):
            if isinstance(p, Mask):
                w = w * p.mask
    return w


def weight_bits(t: WeightTarget) -> int:
    if parametrize.is_parametrized(t.module, t.param):
        for p in getattr(t.module.parametrizations, t.param):
            if isinstance(p, FakeQuant):
                return p.bits
    return 32


def singleton_groups(nonzero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """alpha = 1: each nonzero column is its own group."""
    cols = np.flatnonzero(nonzero.any(axis=0)).astype(np.int64)
    return np.arange(len(cols) + 1, dtype=np.int64), cols


def _numpy(b: torch.Tensor | None) -> np.ndarray | None:
    return None if b is None else b.detach().cpu().numpy()


def _biases(t: WeightTarget) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(bias, recurrent_bias) of the target in the packed format: an LSTM's b_ih + b_hh in one
    (the hardware adds one bias per gate row), a GRU's b_ih and b_hh apart (its n gate scales
    b_hn by r), a linear layer's bias; an embedding and a projection have none."""
    m = t.module
    if t.kind in ("lstm", "gru"):
        b_ih, b_hh = (getattr(m, n, None) for n in ("bias_ih", "bias_hh"))
        if t.kind == "gru":
            return _numpy(b_ih), _numpy(b_hh)
        parts = [p.detach() for p in (b_ih, b_hh) if p is not None]
        return (sum(parts).cpu().numpy() if parts else None), None
    b = getattr(m, "bias", None)
    return (None if t.kind in ("embedding", "proj") else _numpy(b)), None


def packed_kind(t: WeightTarget) -> tuple[str, bool]:
    """(kind, recurrent) of the target in the packed format; see the module docstring."""
    if t.kind in ("lstm", "gru", "proj"):
        return t.kind, False
    # the spiking cells name their recurrent matrix linear_hh: it is fed back h_{t-1}
    return "linear", t.kind == "linear" and t.name.rsplit(".", 1)[-1] == "linear_hh"


def proj_size(t: WeightTarget) -> int | None:
    """The state width of an LSTM target with a projection (its recurrent columns), else None."""
    state = t.cols - t.input_size if t.kind == "lstm" else None
    return state if state is not None and state != t.hidden_size else None


def _act_bits(t: WeightTarget) -> int:
    aq = getattr(t.module, "input_act", None)
    return aq.bits if isinstance(aq, ActQuant) else 32


@torch.no_grad()
def pack_targets(
    pipeline,
    *,
    model: str | None = None,
    workload: dict | None = None,
    spike_rates: dict[str, float] | None = None,
    extra: dict | None = None,
):
    combine = pipeline.pass_named("combine")
    alpha = combine.config.max_paths if combine is not None else 1
    gamma = combine.config.gamma if combine is not None else 0.0
    layers = []
    for t in pipeline.targets:
        w = masked_weight(t)
        bits = weight_bits(t)
        scale = None
        if bits < 32:
            codes, s = quantize_rows(w, bits)
            w, scale = codes, s[:, 0].cpu().numpy()
        wn = w.cpu().numpy().astype(np.float32)
        g = combine.groups_of(t) if combine is not None else None
        if g is not None:
            ptr, cols = g.group_ptr, g.group_cols
        else:
            ptr, cols = singleton_groups(wn != 0)
        rates = spike_rates or {}
        kind, recurrent = packed_kind(t)
        gated = kind in GATES
        bias, recurrent_bias = _biases(t)
        layers.append(
            pack_layer(
                wn,
                ptr,
                cols,
                name=t.name,
                max_paths=alpha,
                gamma=gamma,
                kind=kind,
                input_size=t.input_size if gated else None,
                hidden_size=t.hidden_size if gated else None,
                proj_size=proj_size(t),
                # any other kind is one split in the format; the groups still never crossed
                # the target's own splits (the combine pass kept them apart)
                col_splits=list(t.col_splits) if gated else [0, t.cols],
                scale=scale,
                weight_bits=bits,
                bias=bias,
                recurrent_bias=recurrent_bias,
                act_bits=_act_bits(t),
                input_spike_rate=rates.get(t.name),
                recurrent_spike_rate=rates.get(t.name + "/recurrent"),
                recurrent=recurrent,
            )
        )
    return PackedModel(layers=layers, model=model, workload=workload, extra=extra or {})
