"""The packed JSON: its version string, the layer kinds and the checks of one layer's figures.

`read_figures` is what a cost model needs from a packed model (hwsim reads nothing else): it
accepts a file or a hand-made document without arrays, so every field the pipeline adds for its
own round trip (gamma, nnz_before, pruned_*) is optional here. `common.packed.model` reads the
same figures first and then asks for those fields and the arrays.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.configs import check_max_paths

FORMAT = "lstmpack.packed/1"
# "lstm" and "gru": a recurrent layer's fused [W_ih | W_hh] (gate rows by input + fed-back
# columns); "proj": an LSTM's projection W_hr, multiplied once per step; "linear": anything else.
# Kinds only ever get added: a file written before a kind existed still reads (GRU layers and
# projections were packed as recurrent "linear" layers before "gru" and "proj").
KINDS = ("lstm", "gru", "proj", "linear")
GATES = {"lstm": 4, "gru": 3}  # gate blocks of a recurrent kind's rows
FLOAT_BITS = 32  # a width of 32 bits means IEEE float; 1..16 means integer codes


class PackingFigures:
    """Figures of a packed matrix from its rows, cols, groups and nnz: one definition for the
    combining statistics, a packed layer and its JSON entry."""

    @property
    def packing_efficiency(self) -> float:
        """nnz / (rows * groups): the share of packed cells that hold a weight."""
        cells = self.rows * self.groups  # type: ignore[attr-defined]
        return self.nnz / cells if cells else 0.0  # type: ignore[attr-defined]

    @property
    def column_reduction(self) -> float:
        """cols / groups: how many times fewer array columns than matrix columns."""
        groups = self.groups  # type: ignore[attr-defined]
        return self.cols / groups if groups else math.inf  # type: ignore[attr-defined]

    def tiles(self, array_rows: int, array_cols: int) -> int:
        """Tiles of the packed matrix on an R x C array: output rows on the array's rows, one
        group per array column (the paper's layout), ceil(rows/R) * ceil(groups/C)."""
        if array_rows < 1 or array_cols < 1:
            raise ValueError(f"array size must be >= 1 x 1, got {array_rows} x {array_cols}")
        rows, groups = self.rows, self.groups  # type: ignore[attr-defined]
        return math.ceil(rows / array_rows) * math.ceil(groups / array_cols)


class Fields:
    """Reads one JSON object's fields; every message names the place, the field and what is
    allowed, so a bad file is fixed from the message alone."""

    def __init__(self, entry: Mapping, where: str) -> None:
        self.entry = entry
        self.where = where

    def fail(self, name: str, allowed: str, value: object) -> ValueError:
        return ValueError(f"{self.where}: field {name!r} must be {allowed}, got {value!r}")

    def get(self, name: str, required: bool = True) -> object:
        if name not in self.entry:
            if required:
                raise ValueError(f"{self.where}: missing required field {name!r}")
            return None
        return self.entry[name]

    def integer(self, name: str, minimum: int = 1) -> int:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"an integer >= {minimum}", value)
        return value

    def number(self, name: str) -> float:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, "a number", value)
        return float(value)

    def max_paths(self) -> int:
        return check_max_paths(self.get("max_paths"), f"{self.where}: field 'max_paths'")

    def bits(self, name: str, required: bool = False) -> int:
        value = self.get(name, required=required)
        if value is None:
            return FLOAT_BITS
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= FLOAT_BITS:
            raise self.fail(name, f"an integer in 1..{FLOAT_BITS} (32 = float)", value)
        return value

    def rate(self, name: str) -> float | None:
        value = self.get(name, required=False)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0.0 <= float(value) <= 1.0
        ):
            raise self.fail(name, "null or a number in [0, 1]", value)
        return float(value)

    def int_list(self, name: str, length: int | None = None) -> list[int]:
        value = self.get(name)
        if (
            not isinstance(value, list)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or (length is not None and len(value) != length)
        ):
            allowed = f"a list of {length} integers" if length is not None else "a list of integers"
            raise self.fail(name, allowed, value)
        return value


@dataclass(frozen=True)
class LayerFigures(PackingFigures):
    """One layer's entry in the packed JSON, checked: sizes, groups, nonzeros, widths, rates."""

    name: str
    kind: str
    rows: int
    cols: int
    col_splits: tuple[int, ...]
    groups: int
    groups_per_split: tuple[int, ...]
    max_paths: int
    nnz: int
    weight_bits: int
    act_bits: int
    input_size: int | None = None
    hidden_size: int | None = None
    input_spike_rate: float | None = None
    recurrent_spike_rate: float | None = None
    nnz_per_split: tuple[int, ...] | None = None
    # A linear layer fed back its own step's output (a cell's linear_hh): a cost model runs it
    # as T sequential GEMMs, not one GEMM batched over the sequence.
    recurrent: bool = False
    # An LSTM layer with a projection (nn.LSTM's proj_size): the state fed back, and so the
    # recurrent columns, is proj_size wide; None: hidden_size, as a plain LSTM
    proj_size: int | None = None

    @property
    def state_size(self) -> int | None:
        """The width of the fed-back state a recurrent kind's W_hh multiplies (its recurrent
        columns): proj_size for a projected LSTM, else hidden_size; None for other kinds."""
        return self.proj_size or self.hidden_size


def layer_where(source: str, index: int, name: object = None) -> str:
    """How messages name a layer: the file (or "packed model"), its index and its name."""
    return f"{source}: layers[{index}]" + (f" ({name!r})" if name is not None else "")


def parse_layer(entry: object, source: str, index: int) -> LayerFigures:
    """Check one entry of `layers` and return its figures; ValueError names file and field."""
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"{layer_where(source, index)} must be an object, got {type(entry).__name__}"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{layer_where(source, index)}: field 'name' must be a non-empty string, got {name!r}"
        )
    f = Fields(entry, layer_where(source, index, name))
    kind = f.get("kind")
    if kind not in KINDS:
        raise f.fail("kind", f"one of {', '.join(KINDS)}", kind)
    rows, cols = f.integer("rows"), f.integer("cols")
    splits = f.int_list("col_splits")
    input_size = hidden = proj = None
    if kind in GATES:
        input_size, hidden = f.integer("input_size"), f.integer("hidden_size")
        proj = _proj_size(f, kind, hidden)
        state = proj or hidden
        if cols != input_size + state:
            what = "proj_size" if proj else "hidden_size"
            raise f.fail("cols", f"input_size + {what} = {input_size + state}", cols)
        if rows != GATES[kind] * hidden:
            raise f.fail("rows", f"{GATES[kind]} * hidden_size = {GATES[kind] * hidden}", rows)
        expected = [0, input_size, cols]
    else:
        expected = [0, cols]
    if splits != expected:
        raise f.fail("col_splits", str(expected), splits)
    n_splits = len(splits) - 1
    # 0 groups is legal: pruning may empty a whole split (or layer), which then costs nothing.
    groups = f.integer("groups", minimum=0)
    gps = f.int_list("groups_per_split", length=n_splits)
    widths = [splits[i + 1] - splits[i] for i in range(n_splits)]
    for g, w in zip(gps, widths):
        if not 0 <= g <= w:
            raise f.fail("groups_per_split", f"integers in 0..split width {widths}", gps)
    if sum(gps) != groups:
        raise f.fail("groups", f"sum(groups_per_split) = {sum(gps)}", groups)
    max_paths = f.max_paths()
    nnz = f.integer("nnz", minimum=0)
    if nnz > rows * groups:
        raise f.fail("nnz", f"at most rows * groups = {rows * groups}", nnz)
    nnz_split = None
    if entry.get("nnz_per_split") is not None:
        nnz_split = f.int_list("nnz_per_split", length=n_splits)
        if sum(nnz_split) != nnz or any(not 0 <= n <= rows * g for n, g in zip(nnz_split, gps)):
            raise f.fail(
                "nnz_per_split", f"counts within rows*groups summing to nnz={nnz}", nnz_split
            )
        nnz_split = tuple(nnz_split)
    recurrent = entry.get("recurrent", False)
    if not isinstance(recurrent, bool) or (recurrent and kind != "linear"):
        raise f.fail("recurrent", "true or false (true only for a linear layer)", recurrent)
    return LayerFigures(
        name=name,
        kind=kind,
        rows=rows,
        cols=cols,
        col_splits=tuple(splits),
        groups=groups,
        groups_per_split=tuple(gps),
        max_paths=max_paths,
        nnz=nnz,
        weight_bits=f.bits("weight_bits"),
        act_bits=f.bits("act_bits"),
        input_size=input_size,
        hidden_size=hidden,
        input_spike_rate=f.rate("input_spike_rate"),
        recurrent_spike_rate=f.rate("recurrent_spike_rate"),
        nnz_per_split=nnz_split,
        recurrent=recurrent,
        proj_size=proj,
    )


def _proj_size(f: Fields, kind: str, hidden: int) -> int | None:
    """The optional proj_size of an lstm layer (absent or null: no projection)."""
    if f.get("proj_size", required=False) is None:
        return None
    if kind != "lstm":
        raise f.fail(
            "proj_size", "absent (only an lstm layer has a projection)", f.entry["proj_size"]
        )
    proj = f.integer("proj_size")
    if proj >= hidden:
        raise f.fail("proj_size", f"an integer in 1..hidden_size-1 = {hidden - 1}", proj)
    return proj


def read_document(path_or_dict: str | os.PathLike | Mapping) -> tuple[Mapping, str]:
    """The packed JSON document and how messages name it (its path, or "packed model")."""
    if isinstance(path_or_dict, Mapping):
        return path_or_dict, "packed model"
    source = str(path_or_dict)
    try:
        with open(path_or_dict, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError as exc:
        raise ValueError(f"packed file {source!r} does not exist") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"packed file {source!r} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise ValueError(f"packed file {source!r} cannot be read: {exc}") from exc
    return doc, source


def read_figures(
    path_or_dict: str | os.PathLike | Mapping, *, allow_empty: bool = False
) -> tuple[dict, list[LayerFigures]]:
    """Read and check a packed model's JSON; returns (document, figures of each layer).

    A cost model needs at least one layer; the pipeline's own files may hold none
    (`allow_empty`)."""
    doc, source = read_document(path_or_dict)
    if not isinstance(doc, Mapping):
        raise ValueError(f"{source}: top level must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ValueError(f"{source}: field 'format' must be {FORMAT!r}, got {doc.get('format')!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not (layers or allow_empty):
        kind = "a list" if allow_empty else "a non-empty list"
        raise ValueError(f"{source}: field 'layers' must be {kind}, got {layers!r}")
    parsed = [parse_layer(entry, source, i) for i, entry in enumerate(layers)]
    names = [p.name for p in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: layer names must be unique, got {names}")
    return dict(doc), parsed
