"""The checks that tie a packed layer's figures to its arrays (numpy only).

Groups are CSR arrays: group g holds the columns `group_cols[group_ptr[g]:group_ptr[g+1]]`,
ascending, no column in two groups, no group crossing a `col_splits` boundary, groups ordered by
split. `control[r, g]` names the kept column of group g in row r, or -1; `values[r, g]` is the
kept weight (an integer code when weight_bits < 32, the real weight being values * scale[r]).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from common.configs import check_max_paths
from common.packed.schema import FLOAT_BITS, GATES, KINDS

if TYPE_CHECKING:
    from common.packed.model import PackedLayer


def check_groups(group_ptr: np.ndarray, group_cols: np.ndarray, cols: int) -> None:
    """ValueError unless the CSR groups are well formed over `cols` columns."""
    ptr = np.asarray(group_ptr)
    gcols = np.asarray(group_cols)
    if ptr.ndim != 1 or len(ptr) < 1 or ptr[0] != 0 or ptr[-1] != len(gcols):
        raise ValueError("group_ptr must be 1-D, start at 0 and end at len(group_cols)")
    sizes = np.diff(ptr)
    if (sizes < 1).any():
        raise ValueError("group_ptr: every group must hold >= 1 column")
    if gcols.ndim != 1 or ((gcols < 0) | (gcols >= cols)).any():
        raise ValueError(f"group_cols must be 1-D column ids in [0, {cols})")
    if len(np.unique(gcols)) != len(gcols):
        raise ValueError("group_cols: a column appears in more than one group")
    starts = np.repeat(ptr[:-1], sizes)
    ascending = np.ones(len(gcols), bool)
    ascending[1:] = gcols[1:] > gcols[:-1]
    if not ascending[np.arange(len(gcols)) != starts].all():
        raise ValueError("group_cols must be ascending within each group")


def split_counts(group_ptr: np.ndarray, group_cols: np.ndarray, col_splits) -> list[int]:
    """Groups per split; ValueError when a group crosses a split or groups are out of order."""
    splits = np.asarray(col_splits, np.int64)
    sizes = np.diff(group_ptr)
    if len(sizes) == 0:
        return [0] * (len(splits) - 1)
    first = group_cols[group_ptr[:-1]]
    last = group_cols[group_ptr[1:] - 1]
    block_first = np.searchsorted(splits, first, side="right") - 1
    block_last = np.searchsorted(splits, last, side="right") - 1
    if (block_first != block_last).any():
        g = int(np.flatnonzero(block_first != block_last)[0])
        raise ValueError(f"group {g} crosses a col_splits boundary {list(splits)}")
    if (np.diff(block_first) < 0).any():
        raise ValueError("groups must be ordered by col_splits block")
    return np.bincount(block_first, minlength=len(splits) - 1).tolist()


def validate_layer(layer: PackedLayer, where: str) -> None:
    """ValueError `<where><field>: <what is wrong>` when the layer breaks the packed format."""

    def bad(fld: str, msg: str) -> ValueError:
        return ValueError(f"{where}{fld}: {msg}")

    _check_figures(layer, bad, where)
    ptr, gcols = layer.group_ptr, layer.group_cols
    for fld, arr in (("group_ptr", ptr), ("group_cols", gcols)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.int64 or arr.ndim != 1:
            raise bad(fld, "must be a 1-D int64 array")
    try:
        check_groups(ptr, gcols, layer.cols)
    except ValueError as exc:
        raise bad("group_ptr/group_cols", str(exc)) from exc
    if len(ptr) > 1 and np.diff(ptr).max() > layer.max_paths:
        raise bad("group_ptr", f"a group holds more than max_paths={layer.max_paths} columns")
    try:
        per_split = split_counts(ptr, gcols, layer.col_splits)
    except ValueError as exc:
        raise bad("col_splits", str(exc)) from exc
    if list(layer.groups_per_split) != per_split:
        raise bad("groups_per_split", f"{list(layer.groups_per_split)} but groups say {per_split}")
    _check_cells(layer, bad)
    _check_scale_and_bias(layer, bad)


def _check_figures(layer: PackedLayer, bad, where: str) -> None:
    if layer.kind not in KINDS:
        raise bad("kind", f"must be one of {KINDS}, got {layer.kind!r}")
    if layer.rows < 0 or layer.cols < 0:
        raise bad("rows/cols", f"must be >= 0, got {layer.rows} x {layer.cols}")
    check_max_paths(layer.max_paths, f"{where}max_paths")
    if not math.isfinite(layer.gamma) or layer.gamma < 0:
        raise bad("gamma", f"must be a finite number >= 0, got {layer.gamma}")
    splits = list(layer.col_splits)
    if len(splits) < 2 or splits[0] != 0 or splits[-1] != layer.cols:
        raise bad("col_splits", f"must run from 0 to cols={layer.cols}, got {splits}")
    if any(b < a for a, b in zip(splits, splits[1:])):
        raise bad("col_splits", f"must be non-decreasing, got {splits}")
    if layer.kind in GATES:
        kind, gates = layer.kind, GATES[layer.kind]
        if layer.input_size is None or layer.hidden_size is None:
            raise bad("input_size/hidden_size", f"required for a {kind} layer")
        proj = layer.proj_size
        if proj is not None and (kind != "lstm" or not 0 < proj < layer.hidden_size):
            raise bad("proj_size", "must be None, or in 1..hidden_size-1 for an lstm layer")
        state = proj or layer.hidden_size  # the fed-back state W_hh multiplies
        want = [0, layer.input_size, layer.input_size + state]
        if splits != want:
            raise bad("col_splits", f"must be [0, input_size, cols] = {want} for a {kind} layer")
        if layer.input_size + state != layer.cols:
            what = "proj_size" if proj else "hidden_size"
            raise bad("cols", f"must equal input_size + {what} for a {kind} layer")
        if layer.rows != gates * layer.hidden_size:
            raise bad("rows", f"must equal {gates} * hidden_size for a {kind} layer")
    elif layer.proj_size is not None:
        raise bad("proj_size", "only an lstm layer has one")
    if layer.weight_bits != FLOAT_BITS and not 2 <= layer.weight_bits <= 16:
        raise bad("weight_bits", f"must be 32 (float) or 2..16, got {layer.weight_bits}")
    if not 1 <= layer.act_bits <= FLOAT_BITS:
        raise bad("act_bits", f"must be in 1..32, got {layer.act_bits}")


def _check_cells(layer: PackedLayer, bad) -> None:
    """control names a column of its own group or -1, values are 0 where it is -1, nnz agrees."""
    shape = (layer.rows, layer.groups)
    control, values = layer.control, layer.values
    if not isinstance(control, np.ndarray) or control.dtype != np.int32 or control.shape != shape:
        raise bad("control", f"must be an int32 array of shape {shape}")
    if not isinstance(values, np.ndarray) or values.dtype != np.float32 or values.shape != shape:
        raise bad("values", f"must be a float32 array of shape {shape}")
    if control.size:
        ptr = layer.group_ptr
        owner = np.full(layer.cols + 1, -2, np.int64)
        owner[layer.group_cols] = np.repeat(np.arange(layer.groups), np.diff(ptr))
        ctl = np.where(control < 0, layer.cols, control)
        if ((control < -1) | (control >= layer.cols)).any():
            raise bad("control", f"entries must be -1 or column ids in [0, {layer.cols})")
        in_group = (owner[ctl] == np.arange(layer.groups)[None, :]) | (control == -1)
        if not in_group.all():
            raise bad("control", "names a column outside its group")
        if (values[control == -1] != 0).any():
            raise bad("values", "must be 0 where control is -1")
    if int((control >= 0).sum()) != layer.nnz:
        raise bad("nnz", f"{layer.nnz} but control holds {int((control >= 0).sum())} weights")
    if layer.nnz_before - layer.nnz != layer.pruned_conflicts or layer.pruned_conflicts < 0:
        raise bad("pruned_conflicts", "must equal nnz_before - nnz (>= 0)")


def _check_scale_and_bias(layer: PackedLayer, bad) -> None:
    values = layer.values
    if layer.weight_bits < FLOAT_BITS:
        if layer.scale is None:
            raise bad("scale", "required when weight_bits < 32")
        if layer.scale.dtype != np.float32 or layer.scale.shape != (layer.rows,):
            raise bad("scale", f"must be a float32 array of shape ({layer.rows},)")
        if not np.array_equal(values, np.round(values)):
            raise bad("values", "must be integer-valued when weight_bits < 32")
        top = 2 ** (layer.weight_bits - 1)
        if values.size and (values.min() < -top or values.max() > top - 1):
            raise bad(
                "values", f"must lie in [{-top}, {top - 1}] for weight_bits={layer.weight_bits}"
            )
    elif layer.scale is not None:
        raise bad("scale", "only allowed when weight_bits < 32")
    for name in ("bias", "recurrent_bias"):
        b = getattr(layer, name)
        if b is not None and (
            not isinstance(b, np.ndarray) or b.dtype != np.float32 or b.shape != (layer.rows,)
        ):
            raise bad(name, f"must be a float32 array of shape ({layer.rows},)")
    if layer.recurrent_bias is not None and layer.kind != "gru":
        # an LSTM's two biases add up into one; a GRU's n gate scales b_hn by r, so it is kept
        raise bad("recurrent_bias", "only a gru layer has one (an lstm's biases add up)")
