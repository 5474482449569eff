"""Packing the final weights: combine each matrix by its groups and keep the result with its
figures (numpy only). The format itself (`PackedLayer`, `PackedModel`, the files, their checks)
lives in `common.packed`, which hwsim and reports read too.

Dense equivalence: W_masked[r, control[r, g]] = values[r, g] * scale[r] wherever control >= 0,
all else 0, and `packed_matmul(layer, X) == W_masked @ X`.
"""

from __future__ import annotations

import numpy as np

from common.packed import FORMAT, GATES, KINDS, PackedLayer, PackedModel, split_counts
from compress.passes.combining import BLOCK_ELEMENTS, CombineStats, combine

# The names callers have always imported from here.
__all__ = [
    "FORMAT",
    "KINDS",
    "CombineStats",
    "PackedLayer",
    "PackedModel",
    "combine",
    "pack_layer",
    "packed_matmul",
    "unpack_biases",
    "unpack_dense",
]


def pack_layer(
    W: np.ndarray,
    group_ptr: np.ndarray,
    group_cols: np.ndarray,
    *,
    name: str,
    max_paths: int,
    gamma: float,
    kind: str = "linear",
    input_size: int | None = None,
    hidden_size: int | None = None,
    col_splits: list[int] | None = None,
    scale: np.ndarray | None = None,
    weight_bits: int = 32,
    bias: np.ndarray | None = None,
    act_bits: int = 32,
    input_spike_rate: float | None = None,
    recurrent_spike_rate: float | None = None,
    recurrent: bool = False,
    proj_size: int | None = None,
    recurrent_bias: np.ndarray | None = None,
) -> PackedLayer:
    """Combine W by the groups and package the result with its figures.

    With weight_bits < 32, W holds the integer levels and `scale` the per-row step (the real
    weight is W * scale[:, None]); pruned_l1 is in real units. col_splits defaults to
    [0, input_size, cols] for an LSTM or GRU and [0, cols] for any other kind. `proj_size` is a
    projected LSTM's state width (its recurrent columns); `recurrent_bias` a GRU's b_hh, `bias`
    then being its b_ih.
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix, got {W.ndim}-D")
    rows, cols = W.shape
    if col_splits is None:
        col_splits = [0, int(input_size), cols] if kind in GATES and input_size else [0, cols]
    _, control, values, stats = combine(W, group_ptr, group_cols)
    pruned_l1 = stats.pruned_l1
    if scale is not None:
        scale = np.asarray(scale, np.float32)
        if scale.shape != (rows,):
            raise ValueError(f"scale must have shape ({rows},), got {scale.shape}")
        dropped = np.abs(W).sum(axis=1, dtype=np.float64) - np.abs(values).sum(
            axis=1, dtype=np.float64
        )
        pruned_l1 = float((dropped * np.abs(scale)).sum())
    layer = PackedLayer(
        name=name,
        kind=kind,
        rows=rows,
        cols=cols,
        col_splits=[int(s) for s in col_splits],
        groups_per_split=split_counts(
            np.asarray(group_ptr, np.int64), np.asarray(group_cols, np.int64), col_splits
        ),
        max_paths=int(max_paths),
        gamma=float(gamma),
        nnz_before=stats.nnz_before,
        nnz=stats.nnz,
        pruned_conflicts=stats.pruned_conflicts,
        pruned_l1=pruned_l1,
        group_ptr=np.asarray(group_ptr, np.int64),
        group_cols=np.asarray(group_cols, np.int64),
        control=control,
        values=values.astype(np.float32),
        scale=scale,
        bias=None if bias is None else np.asarray(bias, np.float32),
        input_size=input_size,
        hidden_size=hidden_size,
        weight_bits=int(weight_bits),
        act_bits=int(act_bits),
        input_spike_rate=input_spike_rate,
        recurrent_spike_rate=recurrent_spike_rate,
        recurrent=recurrent,
        proj_size=None if proj_size is None else int(proj_size),
        recurrent_bias=None if recurrent_bias is None else np.asarray(recurrent_bias, np.float32),
    )
    layer.validate()
    return layer


def unpack_biases(layer: PackedLayer) -> dict[str, np.ndarray]:
    """The bias parameters of the layer's module, by their names there, from the packed file.

    An LSTM's file holds b_ih + b_hh (the hardware adds one bias per gate row): it comes back as
    bias_ih with a zero bias_hh, which computes the same gates. A GRU's holds both apart (bias,
    recurrent_bias). A linear layer's bias is `bias`; a projection has none. Empty when the file
    holds no bias."""
    if layer.bias is None:
        return {}
    bias = np.asarray(layer.bias, np.float32)
    if layer.kind == "lstm":
        return {"bias_ih": bias, "bias_hh": np.zeros_like(bias)}
    if layer.kind == "gru":
        rec = layer.recurrent_bias
        return {"bias_ih": bias, "bias_hh": np.zeros_like(bias) if rec is None else rec}
    return {"bias": bias}


def unpack_dense(layer: PackedLayer) -> np.ndarray:
    """W_masked (rows, cols) float32: the dense matrix the packed layer multiplies by."""
    W = np.zeros((layer.rows, layer.cols), np.float32)
    r, g = np.nonzero(layer.control >= 0)
    vals = layer.values[r, g]
    if layer.scale is not None:
        vals = vals * layer.scale[r]
    W[r, layer.control[r, g]] = vals
    return W


def packed_matmul(layer: PackedLayer, X: np.ndarray) -> np.ndarray:
    """W_masked @ X computed from the packed form, gathering X's rows through the control bits.

    X: (cols,) or (cols, n). Each (row, group) cell multiplies one input, as the array does.
    """
    X = np.asarray(X)
    if X.ndim not in (1, 2) or X.shape[0] != layer.cols:
        raise ValueError(f"X must have shape ({layer.cols},) or ({layer.cols}, n), got {X.shape}")
    X2 = X.reshape(layer.cols, -1)
    dtype = np.result_type(layer.values.dtype, X2.dtype, np.float32)
    n = X2.shape[1]
    out = np.zeros((layer.rows, n), dtype)
    live = layer.control >= 0
    safe = np.where(live, layer.control, 0)
    vals = np.where(live, layer.values, 0).astype(dtype)
    block = max(1, BLOCK_ELEMENTS // max(1, layer.groups * n))
    for r0 in range(0, layer.rows, block):
        gathered = X2[safe[r0 : r0 + block]].astype(dtype, copy=False)  # (rb, groups, n)
        out[r0 : r0 + block] = np.einsum("rg,rgn->rn", vals[r0 : r0 + block], gathered)
    if layer.scale is not None:
        out *= layer.scale[:, None].astype(dtype)
    return out.reshape((layer.rows,) + X.shape[1:])
