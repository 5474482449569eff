"""Pipeline.finalize(): the targets' effective weights as a PackedModel (numpy only).

The packed format models a plain LSTM layer (an input projection batched over the sequence plus T
recurrent GEMMs). A GRU layer, an LSTM layer with a projection and the projection itself are
packed as recurrent linear layers: hwsim then costs T steps of one [x_t ; h_{t-1}] GEMM each (its
fused model), an upper bound on the split model, with the same MACs and weights; a model packed
dense at alpha = 1 is costed the same way, so the comparison stays fair.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils import parametrize

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


def _bias(t: WeightTarget) -> np.ndarray | None:
    m = t.module
    if t.kind == "lstm":
        parts = [getattr(m, n, None) for n in ("bias_ih", "bias_hh")]
        parts = [p.detach() for p in parts if p is not None]
        return sum(parts).cpu().numpy() if parts else None
    b = getattr(m, "bias", None)
    return None if b is None or t.kind == "embedding" else b.detach().cpu().numpy()


def packed_kind(t: WeightTarget) -> tuple[str, bool]:
    """(kind, recurrent) of the target in the packed format; see the module docstring."""
    if t.kind == "lstm" and t.cols == t.input_size + t.hidden_size:
        return "lstm", False
    if t.kind in ("lstm", "gru", "proj"):
        return "linear", True
    # the spiking cells name their recurrent matrix linear_hh: it is fed back h_{t-1}
    return "linear", t.kind == "linear" and t.name.rsplit(".", 1)[-1] == "linear_hh"


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
        layers.append(
            pack_layer(
                wn,
                ptr,
                cols,
                name=t.name,
                max_paths=alpha,
                gamma=gamma,
                kind=kind,
                input_size=t.input_size if kind == "lstm" else None,
                hidden_size=t.hidden_size if kind == "lstm" else None,
                # a linear layer is one split in the format; the groups still never crossed
                # the target's own splits (the combine pass kept them apart)
                col_splits=list(t.col_splits) if kind == "lstm" else [0, t.cols],
                scale=scale,
                weight_bits=bits,
                bias=_bias(t),
                act_bits=_act_bits(t),
                input_spike_rate=rates.get(t.name),
                recurrent_spike_rate=rates.get(t.name + "/recurrent"),
                recurrent=recurrent,
            )
        )
    return PackedModel(layers=layers, model=model, workload=workload, extra=extra or {})
