"""Packed layers: combined weights, control bits, and their files (numpy only).

The on-disk contract with hwsim is PACKED_FORMAT ("lstmpack.packed/1"): `<stem>.json` holds the
per-layer figures (hwsim reads only this), `<stem>.npz` the arrays under keys `<name>/<array>`.

Combining keeps, in each (row, group) cell, the weight of largest magnitude (ties: lowest column)
and zeroes the group's other weights in that row; `control[r, g]` records the kept column, or -1
when the row has no nonzero in the group. Dense equivalence:
W_masked[r, control[r, g]] = values[r, g] * scale[r] wherever control >= 0, all else 0, and
`packed_matmul(layer, X) == W_masked @ X`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "lstmpack.packed/1"
KINDS = ("lstm", "linear")
# Elements per gathered block in combine / packed_matmul: bounds temporary memory (~64 MiB).
_BLOCK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class CombineStats:
    """Per-layer figures of one combining."""

    rows: int
    cols: int
    groups: int
    nnz_before: int
    nnz: int
    pruned_conflicts: int
    pruned_l1: float

    @property
    def packing_efficiency(self) -> float:
        """nnz / (rows * groups): the share of packed cells that hold a weight."""
        cells = self.rows * self.groups
        return self.nnz / cells if cells else 0.0

    @property
    def column_reduction(self) -> float:
        """cols / groups: how many times fewer array columns than matrix columns."""
        return self.cols / self.groups if self.groups else math.inf

    def tiles(self, array_rows: int, array_cols: int) -> int:
        """Tiles of the packed matrix on an R x C array: output rows on the array's rows, one
        group per array column (the paper's layout), ceil(rows/R) * ceil(groups/C)."""
        return _tiles(self.rows, self.groups, array_rows, array_cols)


def _tiles(rows: int, groups: int, array_rows: int, array_cols: int) -> int:
    if array_rows < 1 or array_cols < 1:
        raise ValueError(f"array size must be >= 1 x 1, got {array_rows} x {array_cols}")
    return math.ceil(rows / array_rows) * math.ceil(groups / array_cols)


def _check_groups(group_ptr: np.ndarray, group_cols: np.ndarray, cols: int, where: str) -> None:
    ptr = np.asarray(group_ptr)
    gcols = np.asarray(group_cols)
    if ptr.ndim != 1 or len(ptr) < 1 or ptr[0] != 0 or ptr[-1] != len(gcols):
        raise ValueError(f"{where}group_ptr must be 1-D, start at 0 and end at len(group_cols)")
    sizes = np.diff(ptr)
    if (sizes < 1).any():
        raise ValueError(f"{where}group_ptr: every group must hold >= 1 column")
    if gcols.ndim != 1 or ((gcols < 0) | (gcols >= cols)).any():
        raise ValueError(f"{where}group_cols must be 1-D column ids in [0, {cols})")
    if len(np.unique(gcols)) != len(gcols):
        raise ValueError(f"{where}group_cols: a column appears in more than one group")
    starts = np.repeat(ptr[:-1], sizes)
    ascending = np.ones(len(gcols), bool)
    ascending[1:] = gcols[1:] > gcols[:-1]
    if not ascending[np.arange(len(gcols)) != starts].all():
        raise ValueError(f"{where}group_cols must be ascending within each group")


def _padded_groups(group_ptr: np.ndarray, group_cols: np.ndarray, pad: int) -> np.ndarray:
    """(groups, max size) column ids, padded with `pad` (a zero column appended to W)."""
    sizes = np.diff(group_ptr)
    width = int(sizes.max()) if len(sizes) else 1
    idx = np.full((len(sizes), width), pad, np.int64)
    within = np.arange(len(group_cols)) - np.repeat(group_ptr[:-1], sizes)
    idx[np.repeat(np.arange(len(sizes)), sizes), within] = group_cols
    return idx


def combine(
    W: np.ndarray, group_ptr: np.ndarray, group_cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, CombineStats]:
    """Combine W's columns by the given groups.

    Returns (W_combined, control, values, stats): W_combined is W with every weight but the largest
    per (row, group) zeroed; control int32 (rows, groups) the kept column or -1; values (rows,
    groups) the kept weight (W's dtype), 0 where control is -1. A nonzero column of W outside
    every group is an error (it would be silently dropped).
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix, got {W.ndim}-D")
    rows, cols = W.shape
    group_ptr = np.asarray(group_ptr, np.int64)
    group_cols = np.asarray(group_cols, np.int64)
    _check_groups(group_ptr, group_cols, cols, "")
    covered = np.zeros(cols, bool)
    covered[group_cols] = True
    stray = np.flatnonzero(~covered & (W != 0).any(axis=0))
    if len(stray):
        raise ValueError(f"group_cols misses nonzero column(s) of W, e.g. column {stray[0]}")
    n_groups = len(group_ptr) - 1
    idx = _padded_groups(group_ptr, group_cols, cols)
    W_ext = np.concatenate([W, np.zeros((rows, 1), W.dtype)], axis=1)
    control = np.full((rows, n_groups), -1, np.int32)
    values = np.zeros((rows, n_groups), W.dtype)
    block = max(1, _BLOCK_ELEMENTS // max(1, rows * idx.shape[1]))
    for g0 in range(0, n_groups, block):
        ids = idx[g0 : g0 + block]  # (gb, width)
        sub = W_ext[:, ids]  # (rows, gb, width)
        # argmax takes the first maximum: the lowest column, since groups are ascending
        pick = np.abs(sub).argmax(axis=2)
        kept = np.take_along_axis(sub, pick[:, :, None], axis=2)[:, :, 0]
        has = kept != 0
        control[:, g0 : g0 + block] = np.where(has, ids[np.arange(len(ids)), pick], -1)
        values[:, g0 : g0 + block] = np.where(has, kept, 0)
    W_combined = np.zeros_like(W)
    r, g = np.nonzero(control >= 0)
    W_combined[r, control[r, g]] = values[r, g]
    nnz_before = int(np.count_nonzero(W))
    nnz = int(len(r))
    stats = CombineStats(
        rows=rows,
        cols=cols,
        groups=n_groups,
        nnz_before=nnz_before,
        nnz=nnz,
        pruned_conflicts=nnz_before - nnz,
        pruned_l1=float(np.abs(W).sum(dtype=np.float64) - np.abs(W_combined).sum(dtype=np.float64)),
    )
    return W_combined, control, values, stats


@dataclass
class PackedLayer:
    """One packed weight matrix and its figures, as in PACKED_FORMAT."""

    name: str
    kind: str
    rows: int
    cols: int
    col_splits: list[int]
    groups_per_split: list[int]
    max_paths: int
    gamma: float
    nnz_before: int
    nnz: int
    pruned_conflicts: int
    pruned_l1: float
    group_ptr: np.ndarray
    group_cols: np.ndarray
    control: np.ndarray
    values: np.ndarray
    scale: np.ndarray | None = None
    bias: np.ndarray | None = None
    input_size: int | None = None
    hidden_size: int | None = None
    weight_bits: int = 32
    act_bits: int = 32
    input_spike_rate: float | None = None
    recurrent_spike_rate: float | None = None
    # A linear layer fed back its own step's output (a cell's linear_hh): hwsim costs it as T
    # sequential GEMMs, not one GEMM batched over the sequence.
    recurrent: bool = False

    @property
    def groups(self) -> int:
        return len(self.group_ptr) - 1

    @property
    def nnz_per_split(self) -> list[int]:
        """Kept weights inside each column split (the input and recurrent parts of an LSTM)."""
        out = []
        for lo, hi in zip(self.col_splits[:-1], self.col_splits[1:]):
            c = self.control
            out.append(int(((c >= lo) & (c < hi)).sum()))
        return out

    @property
    def packing_efficiency(self) -> float:
        cells = self.rows * self.groups
        return self.nnz / cells if cells else 0.0

    @property
    def column_reduction(self) -> float:
        return self.cols / self.groups if self.groups else math.inf

    def tiles(self, array_rows: int, array_cols: int) -> int:
        """ceil(rows/R) * ceil(groups/C): output rows on array rows, one group per array column."""
        return _tiles(self.rows, self.groups, array_rows, array_cols)

    def validate(self, where: str = "") -> None:
        """Raise ValueError naming the field when the layer breaks PACKED_FORMAT."""
        _validate_layer(self, where or f"layer {self.name!r}.")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "rows": int(self.rows),
            "cols": int(self.cols),
        }
        if self.kind == "lstm":
            out["input_size"] = int(self.input_size)  # type: ignore[arg-type]
            out["hidden_size"] = int(self.hidden_size)  # type: ignore[arg-type]
        out.update(
            col_splits=[int(s) for s in self.col_splits],
            groups=self.groups,
            groups_per_split=[int(g) for g in self.groups_per_split],
            max_paths=int(self.max_paths),
            gamma=float(self.gamma),
            nnz_before=int(self.nnz_before),
            nnz=int(self.nnz),
            pruned_conflicts=int(self.pruned_conflicts),
            pruned_l1=float(self.pruned_l1),
            weight_bits=int(self.weight_bits),
            act_bits=int(self.act_bits),
            input_spike_rate=self.input_spike_rate,
            recurrent_spike_rate=self.recurrent_spike_rate,
            nnz_per_split=self.nnz_per_split,
        )
        if self.recurrent:
            out["recurrent"] = True
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "group_ptr": np.asarray(self.group_ptr, np.int64),
            "group_cols": np.asarray(self.group_cols, np.int64),
            "control": np.asarray(self.control, np.int32),
            "values": np.asarray(self.values, np.float32),
        }
        if self.scale is not None:
            out["scale"] = np.asarray(self.scale, np.float32)
        if self.bias is not None:
            out["bias"] = np.asarray(self.bias, np.float32)
        return out

    def save(self, stem: str | os.PathLike[str]) -> None:
        """Write `<stem>.json` + `<stem>.npz` holding this layer alone."""
        PackedModel([self]).save(stem)

    @classmethod
    def load(cls, stem: str | os.PathLike[str], name: str | None = None) -> PackedLayer:
        """The layer `name` of a packed model (the only layer when name is None)."""
        model = PackedModel.load(stem)
        if name is None:
            if len(model.layers) != 1:
                raise ValueError(
                    f"{stem}: holds {len(model.layers)} layers; pass name= to pick one"
                )
            return model.layers[0]
        for layer in model.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{stem}: no layer named {name!r}")


def _splits_of(group_ptr, group_cols, col_splits) -> list[int]:
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
) -> PackedLayer:
    """Combine W by the groups and package the result with its figures.

    With weight_bits < 32, W holds the integer levels and `scale` the per-row step (the real
    weight is W * scale[:, None]); pruned_l1 is in real units. col_splits defaults to
    [0, input_size, cols] for an LSTM and [0, cols] for a linear layer.
    """
    W = np.asarray(W)
    if W.ndim != 2:
        raise ValueError(f"W must be a 2-D matrix, got {W.ndim}-D")
    rows, cols = W.shape
    if col_splits is None:
        col_splits = [0, int(input_size), cols] if kind == "lstm" and input_size else [0, cols]
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
        groups_per_split=_splits_of(
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
    )
    layer.validate()
    return layer


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
    block = max(1, _BLOCK_ELEMENTS // max(1, layer.groups * n))
    for r0 in range(0, layer.rows, block):
        gathered = X2[safe[r0 : r0 + block]].astype(dtype, copy=False)  # (rb, groups, n)
        out[r0 : r0 + block] = np.einsum("rg,rgn->rn", vals[r0 : r0 + block], gathered)
    if layer.scale is not None:
        out *= layer.scale[:, None].astype(dtype)
    return out.reshape((layer.rows,) + X.shape[1:])


@dataclass
class PackedModel:
    """Packed layers in model order plus free metadata; files per PACKED_FORMAT."""

    layers: list[PackedLayer]
    model: str | None = None
    workload: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        if self.model is not None:
            out["model"] = self.model
        if self.workload is not None:
            out["workload"] = self.workload
        out.update(self.extra)
        out["layers"] = [layer.to_json() for layer in self.layers]
        return out

    def save(self, stem: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write `<stem>.npz` then `<stem>.json`, each atomically (temp file + os.replace)."""
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique, got {names}")
        for layer in self.layers:
            layer.validate()
        stem = Path(stem)
        json_path = stem.with_name(stem.name + ".json")
        npz_path = stem.with_name(stem.name + ".npz")
        arrays = {
            f"{layer.name}/{key}": arr
            for layer in self.layers
            for key, arr in layer.arrays().items()
        }
        _atomic_write(npz_path, lambda f: np.savez(f, **arrays))
        text = json.dumps(self.to_json(), indent=2) + "\n"
        _atomic_write(json_path, lambda f: f.write(text.encode()))
        return json_path, npz_path

    @classmethod
    def load(cls, stem: str | os.PathLike[str]) -> PackedModel:
        """Read and validate `<stem>.json` + `<stem>.npz`; ValueError names file and field."""
        stem = Path(stem)
        json_path = stem.with_name(stem.name + ".json")
        npz_path = stem.with_name(stem.name + ".npz")
        try:
            meta = json.loads(json_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{json_path}: cannot read packed JSON ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ValueError(f"{json_path}: format must be {FORMAT!r}, got {got!r}")
        if not isinstance(meta.get("layers"), list):
            raise ValueError(f"{json_path}: layers must be a list")
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                stored = {key: npz[key] for key in npz.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{npz_path}: cannot read packed arrays ({exc})") from exc
        layers = []
        seen: set[str] = set()
        for i, entry in enumerate(meta["layers"]):
            where = f"{json_path}: layers[{i}]"
            layer = _layer_from(entry, stored, where, npz_path)
            if layer.name in seen:
                raise ValueError(f"{where}.name: duplicate layer name {layer.name!r}")
            seen.add(layer.name)
            layers.append(layer)
        extra = {
            k: v for k, v in meta.items() if k not in ("format", "model", "workload", "layers")
        }
        return cls(
            layers=layers, model=meta.get("model"), workload=meta.get("workload"), extra=extra
        )


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_INT_FIELDS = ("rows", "cols", "groups", "max_paths", "nnz_before", "nnz", "pruned_conflicts")


def _layer_from(entry: Any, stored: dict[str, np.ndarray], where: str, npz_path: Path):
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be an object")

    def need(key: str, kinds: tuple[type, ...]) -> Any:
        if key not in entry:
            raise ValueError(f"{where}.{key}: missing")
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ValueError(f"{where}.{key}: expected {'/'.join(k.__name__ for k in kinds)}")
        return value

    name = need("name", (str,))
    if not name:
        raise ValueError(f"{where}.name: must be a non-empty string")
    kind = need("kind", (str,))
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: must be one of {KINDS}, got {kind!r}")
    ints = {key: need(key, (int,)) for key in _INT_FIELDS}
    for key in ("col_splits", "groups_per_split"):
        value = need(key, (list,))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{where}.{key}: must be a list of ints")
    gamma = need("gamma", (int, float))
    pruned_l1 = need("pruned_l1", (int, float))
    weight_bits = need("weight_bits", (int,))
    act_bits = need("act_bits", (int,))
    input_size = hidden_size = None
    if kind == "lstm":
        input_size = need("input_size", (int,))
        hidden_size = need("hidden_size", (int,))
    rates = {}
    for key in ("input_spike_rate", "recurrent_spike_rate"):
        value = entry.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
        ):
            raise ValueError(f"{where}.{key}: must be null or a number in [0, 1]")
        rates[key] = value
    recurrent = entry.get("recurrent", False)
    if not isinstance(recurrent, bool) or (recurrent and kind != "linear"):
        raise ValueError(
            f"{where}.recurrent: must be true or false, and true only for a linear layer"
        )

    def array(key: str, required: bool = True) -> np.ndarray | None:
        full = f"{name}/{key}"
        if full not in stored:
            if required:
                raise ValueError(f"{npz_path}: {full}: missing array")
            return None
        return stored[full]

    layer = PackedLayer(
        name=name,
        kind=kind,
        rows=ints["rows"],
        cols=ints["cols"],
        col_splits=list(entry["col_splits"]),
        groups_per_split=list(entry["groups_per_split"]),
        max_paths=ints["max_paths"],
        gamma=float(gamma),
        nnz_before=ints["nnz_before"],
        nnz=ints["nnz"],
        pruned_conflicts=ints["pruned_conflicts"],
        pruned_l1=float(pruned_l1),
        group_ptr=array("group_ptr"),
        group_cols=array("group_cols"),
        control=array("control"),
        values=array("values"),
        scale=array("scale", required=False),
        bias=array("bias", required=False),
        input_size=input_size,
        hidden_size=hidden_size,
        weight_bits=weight_bits,
        act_bits=act_bits,
        input_spike_rate=rates["input_spike_rate"],
        recurrent_spike_rate=rates["recurrent_spike_rate"],
        recurrent=recurrent,
    )
    if ints["groups"] != layer.groups:
        raise ValueError(
            f"{where}.groups: {ints['groups']} but {npz_path} {name}/group_ptr holds {layer.groups}"
        )
    _validate_layer(layer, f"{where} (arrays in {npz_path.name}).")
    return layer


def _validate_layer(layer: PackedLayer, where: str) -> None:
    def bad(fld: str, msg: str) -> ValueError:
        return ValueError(f"{where}{fld}: {msg}")

    if layer.kind not in KINDS:
        raise bad("kind", f"must be one of {KINDS}, got {layer.kind!r}")
    if layer.rows < 0 or layer.cols < 0:
        raise bad("rows/cols", f"must be >= 0, got {layer.rows} x {layer.cols}")
    if layer.max_paths < 1:
        raise bad("max_paths", f"must be >= 1, got {layer.max_paths}")
    if not math.isfinite(layer.gamma) or layer.gamma < 0:
        raise bad("gamma", f"must be a finite number >= 0, got {layer.gamma}")
    splits = list(layer.col_splits)
    if len(splits) < 2 or splits[0] != 0 or splits[-1] != layer.cols:
        raise bad("col_splits", f"must run from 0 to cols={layer.cols}, got {splits}")
    if any(b < a for a, b in zip(splits, splits[1:])):
        raise bad("col_splits", f"must be non-decreasing, got {splits}")
    if layer.kind == "lstm":
        if layer.input_size is None or layer.hidden_size is None:
            raise bad("input_size/hidden_size", "required for an lstm layer")
        want = [0, layer.input_size, layer.input_size + layer.hidden_size]
        if splits != want:
            raise bad("col_splits", f"must be [0, input_size, cols] = {want} for an lstm layer")
        if layer.input_size + layer.hidden_size != layer.cols:
            raise bad("cols", "must equal input_size + hidden_size for an lstm layer")
        if layer.rows != 4 * layer.hidden_size:
            raise bad("rows", "must equal 4 * hidden_size for an lstm layer")
    if layer.weight_bits != 32 and not 2 <= layer.weight_bits <= 16:
        raise bad("weight_bits", f"must be 32 (float) or 2..16, got {layer.weight_bits}")
    if not 1 <= layer.act_bits <= 32:
        raise bad("act_bits", f"must be in 1..32, got {layer.act_bits}")
    ptr, gcols = layer.group_ptr, layer.group_cols
    for fld, arr, dtype in (("group_ptr", ptr, np.int64), ("group_cols", gcols, np.int64)):
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1:
            raise bad(fld, "must be a 1-D int64 array")
    try:
        _check_groups(ptr, gcols, layer.cols, "")
    except ValueError as exc:
        raise bad("group_ptr/group_cols", str(exc)) from exc
    if layer.max_paths and len(ptr) > 1 and np.diff(ptr).max() > layer.max_paths:
        raise bad("group_ptr", f"a group holds more than max_paths={layer.max_paths} columns")
    try:
        per_split = _splits_of(ptr, gcols, splits)
    except ValueError as exc:
        raise bad("col_splits", str(exc)) from exc
    if list(layer.groups_per_split) != per_split:
        raise bad("groups_per_split", f"{list(layer.groups_per_split)} but groups say {per_split}")
    shape = (layer.rows, layer.groups)
    control, values = layer.control, layer.values
    if not isinstance(control, np.ndarray) or control.dtype != np.int32 or control.shape != shape:
        raise bad("control", f"must be an int32 array of shape {shape}")
    if not isinstance(values, np.ndarray) or values.dtype != np.float32 or values.shape != shape:
        raise bad("values", f"must be a float32 array of shape {shape}")
    if control.size:
        # control must name a column of its own group, or -1
        owner = np.full(layer.cols + 1, -2, np.int64)
        owner[gcols] = np.repeat(np.arange(layer.groups), np.diff(ptr))
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
    if layer.weight_bits < 32:
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
    if layer.bias is not None and (
        layer.bias.dtype != np.float32 or layer.bias.shape != (layer.rows,)
    ):
        raise bad("bias", f"must be a float32 array of shape ({layer.rows},)")
