"""Workloads: the GEMMs a model runs, built from a packed model's JSON (numpy-free, torch-free).

An LSTM layer over T steps with batch B is an input projection batched over the whole sequence
(M = T*B, K = input columns, N = 4H) plus T sequential recurrent GEMMs (M = B, K = hidden columns,
N = 4H): step t needs h_{t-1}, so the recurrent GEMMs cannot be batched. ``fused=True`` treats
[x ; h] as one K per step instead, as a naive accelerator does. With column combining, K is the
number of column groups of that part of the matrix (``groups_per_split``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from hwsim.config import FLOAT_BITS

PACKED_FORMAT = "lstmpack.packed/1"
LAYER_KINDS = ("lstm", "linear")


@dataclass(frozen=True)
class Gemm:
    """One (M x K) @ (K x N) GEMM, run ``repeats`` times back to back.

    K is the packed (array) input dimension: the number of column groups for a combined matrix.
    ``dense_k`` is the original number of input columns it covers (dense-equivalent MACs and the
    inputs a combined row reads through its multiplexers); ``nnz`` the nonzero weights it stores
    (None: all K*N cells). ``spike_rate`` is the firing rate of binary inputs, None when the inputs
    are ordinary activations.
    """

    name: str
    M: int
    K: int
    N: int
    repeats: int = 1
    layer: str = ""
    part: str = "gemm"
    dense_k: int | None = None
    nnz: int | None = None
    weight_bits: int = FLOAT_BITS
    act_bits: int = FLOAT_BITS
    spike_rate: float | None = None
    max_paths: int = 1

    def __post_init__(self) -> None:
        where = f"Gemm {self.name!r}"
        for name in ("M", "K", "N", "repeats", "max_paths"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
        if self.dense_k is not None and (
            isinstance(self.dense_k, bool)
            or not isinstance(self.dense_k, int)
            or self.dense_k < self.K
        ):
            raise ValueError(
                f"{where}: dense_k must be None or an integer >= K={self.K}, got {self.dense_k!r}"
            )
        if self.nnz is not None and (
            isinstance(self.nnz, bool)
            or not isinstance(self.nnz, int)
            or not 0 <= self.nnz <= self.K * self.N
        ):
            raise ValueError(
                f"{where}: nnz must be None or an integer in 0..K*N={self.K * self.N}, "
                f"got {self.nnz!r}"
            )
        for name in ("weight_bits", "act_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
                raise ValueError(
                    f"{where}: {name} must be an integer in 1..32 (32 = float), got {value!r}"
                )
        if self.spike_rate is not None and not (
            isinstance(self.spike_rate, int | float)
            and not isinstance(self.spike_rate, bool)
            and 0.0 <= self.spike_rate <= 1.0
        ):
            raise ValueError(
                f"{where}: spike_rate must be None or a number in [0, 1], got {self.spike_rate!r}"
            )

    @property
    def k_dense(self) -> int:
        return self.K if self.dense_k is None else self.dense_k

    @property
    def weight_nnz(self) -> int:
        return self.K * self.N if self.nnz is None else self.nnz


@dataclass(frozen=True)
class Workload:
    """An ordered tuple of GEMMs (one model inference)."""

    gemms: tuple[Gemm, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.gemms, tuple) or not all(isinstance(g, Gemm) for g in self.gemms):
            raise ValueError("Workload.gemms must be a tuple of Gemm")
        names = [g.name for g in self.gemms]
        if len(set(names)) != len(names):
            raise ValueError(f"Workload GEMM names must be unique, got {names}")

    def __iter__(self) -> Iterator[Gemm]:
        return iter(self.gemms)

    def __len__(self) -> int:
        return len(self.gemms)

    def to_dict(self) -> dict:
        return {"name": self.name, "gemms": [asdict(g) for g in self.gemms]}

    def to_topology_csv(
        self, path: str | os.PathLike | None = None, expand_repeats: bool = True
    ) -> str:
        """SCALE-Sim topology CSV (``Layer, M, N, K,`` rows; note N before K).

        SCALE-Sim has no repeat count, so by default a GEMM run r times becomes r rows
        (``name.0`` ... ``name.{r-1}``), which makes SCALE-Sim's total equal ours. Written
        atomically when ``path`` is given; the text is returned either way.
        """
        buf = io.StringIO()
        buf.write("Layer, M, N, K,\n")
        for g in self.gemms:
            names = (
                [f"{g.name}.{i}" for i in range(g.repeats)]
                if expand_repeats and g.repeats > 1
                else [g.name]
            )
            for name in names:
                buf.write(f"{name}, {g.M}, {g.N}, {g.K},\n")
        text = buf.getvalue()
        if path is not None:
            _atomic_write_text(Path(path), text)
        return text


def from_gemm_rows(rows: list[tuple[int, int, int]], **common: object) -> Workload:
    """A workload from (M, N, K) triples in SCALE-Sim's order, named gemm0, gemm1, ..."""
    gemms = []
    for i, row in enumerate(rows):
        if len(row) != 3:
            raise ValueError(f"GEMM {i}: expected (M, N, K), got {row!r}")
        m, n, k = row
        gemms.append(Gemm(name=f"gemm{i}", layer=f"gemm{i}", M=m, K=k, N=n, **common))
    return Workload(tuple(gemms), name="gemm")


def read_topology_csv(text: str) -> list[tuple[str, int, int, int]]:
    """Parse SCALE-Sim GEMM topology text back into (name, M, N, K) rows."""
    out = []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:4]] != ["Layer", "M", "N", "K"]:
        raise ValueError(f"topology CSV header must start with 'Layer, M, N, K', got {header!r}")
    for row in reader:
        if not row or not "".join(row).strip():
            continue
        out.append((row[0].strip(), int(row[1]), int(row[2]), int(row[3])))
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Packed JSON -> Workload


class _Field:
    """Validates one layer's fields with messages naming the layer, the field and what is allowed."""

    def __init__(self, layer: Mapping, where: str) -> None:
        self.layer = layer
        self.where = where

    def fail(self, name: str, allowed: str, value: object) -> ValueError:
        return ValueError(f"{self.where}: field {name!r} must be {allowed}, got {value!r}")

    def get(self, name: str, required: bool = True) -> object:
        if name not in self.layer:
            if required:
                raise ValueError(f"{self.where}: missing required field {name!r}")
            return None
        return self.layer[name]

    def pos_int(self, name: str, minimum: int = 1) -> int:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"an integer >= {minimum}", value)
        return value

    def bits(self, name: str) -> int:
        value = self.get(name, required=False)
        if value is None:
            return FLOAT_BITS
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= FLOAT_BITS:
            raise self.fail(name, "an integer in 1..32 (32 = float)", value)
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
class PackedLayerInfo:
    """The fields of one packed layer that hwsim needs, validated."""

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
    recurrent: bool = False  # a linear layer fed back its own output: T sequential GEMMs


def _parse_layer(layer: object, index: int) -> PackedLayerInfo:
    if not isinstance(layer, Mapping):
        raise ValueError(f"packed layers[{index}] must be an object, got {type(layer).__name__}")
    name = layer.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"packed layers[{index}]: field 'name' must be a non-empty string, got {name!r}"
        )
    f = _Field(layer, f"packed layer {name!r}")
    kind = f.get("kind")
    if kind not in LAYER_KINDS:
        raise f.fail("kind", f"one of {', '.join(LAYER_KINDS)}", kind)
    rows, cols = f.pos_int("rows"), f.pos_int("cols")
    splits = f.int_list("col_splits")
    if kind == "lstm":
        input_size, hidden = f.pos_int("input_size"), f.pos_int("hidden_size")
        if cols != input_size + hidden:
            raise f.fail("cols", f"input_size + hidden_size = {input_size + hidden}", cols)
        if rows != 4 * hidden:
            raise f.fail("rows", f"4 * hidden_size = {4 * hidden}", rows)
        expected = [0, input_size, cols]
    else:
        input_size = hidden = None
        expected = [0, cols]
    if splits != expected:
        raise f.fail("col_splits", str(expected), splits)
    n_splits = len(splits) - 1
    # 0 groups is legal: pruning may empty a whole split (or layer), which then costs nothing.
    groups = f.pos_int("groups", minimum=0)
    gps = f.int_list("groups_per_split", length=n_splits)
    widths = [splits[i + 1] - splits[i] for i in range(n_splits)]
    for g, w in zip(gps, widths):
        if not 0 <= g <= w:
            raise f.fail("groups_per_split", f"integers in 0..split width {widths}", gps)
    if sum(gps) != groups:
        raise f.fail("groups", f"sum(groups_per_split) = {sum(gps)}", groups)
    max_paths = f.pos_int("max_paths")
    nnz = f.pos_int("nnz", minimum=0)
    if nnz > rows * groups:
        raise f.fail("nnz", f"at most rows * groups = {rows * groups}", nnz)
    nnz_split = None
    if layer.get("nnz_per_split") is not None:
        nnz_split = f.int_list("nnz_per_split", length=n_splits)
        if sum(nnz_split) != nnz or any(not 0 <= n <= rows * g for n, g in zip(nnz_split, gps)):
            raise f.fail(
                "nnz_per_split", f"counts within rows*groups summing to nnz={nnz}", nnz_split
            )
        nnz_split = tuple(nnz_split)
    recurrent = layer.get("recurrent", False)
    if not isinstance(recurrent, bool) or (recurrent and kind != "linear"):
        raise f.fail("recurrent", "true or false (true only for a linear layer)", recurrent)
    return PackedLayerInfo(
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
    )


def load_packed_json(
    path_or_dict: str | os.PathLike | Mapping,
) -> tuple[dict, list[PackedLayerInfo]]:
    """Read and validate a packed model's JSON; returns (document, layers)."""
    if isinstance(path_or_dict, Mapping):
        doc = path_or_dict
        source = "packed model"
    else:
        source = str(path_or_dict)
        try:
            with open(path_or_dict, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError as exc:
            raise ValueError(f"packed file {source!r} does not exist") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"packed file {source!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise ValueError(f"{source}: top level must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != PACKED_FORMAT:
        raise ValueError(
            f"{source}: field 'format' must be {PACKED_FORMAT!r}, got {doc.get('format')!r}"
        )
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{source}: field 'layers' must be a non-empty list, got {layers!r}")
    parsed = [_parse_layer(layer, i) for i, layer in enumerate(layers)]
    names = [p.name for p in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: layer names must be unique, got {names}")
    return dict(doc), parsed


def _split_nnz(info: PackedLayerInfo) -> tuple[int, ...]:
    """Nonzeros per column split.

    The packed JSON records only the layer total unless it carries ``nnz_per_split``; we then
    assume both parts pack equally well and share nnz in proportion to their packed cells
    (rows * groups of that part), using largest-remainder rounding so the parts sum to nnz.
    """
    if info.nnz_per_split is not None:
        return info.nnz_per_split
    if info.groups == 0:
        return tuple(0 for _ in info.groups_per_split)
    shares = [info.nnz * g / info.groups for g in info.groups_per_split]
    base = [math.floor(s) for s in shares]
    order = sorted(range(len(shares)), key=lambda i: base[i] - shares[i])
    for i in order[: info.nnz - sum(base)]:
        base[i] += 1
    return tuple(min(b, info.rows * g) for b, g in zip(base, info.groups_per_split))


def _positive_or_default(name: str, value: object, default: object) -> int:
    chosen = default if value is None else value
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen <= 0:
        raise ValueError(f"{name} must be a positive integer, got {chosen!r}")
    return chosen


def from_packed_json(
    path_or_dict: str | os.PathLike | Mapping,
    seq_len: int | None = None,
    batch: int | None = None,
    fused: bool = False,
    spike_rates: Mapping[str, float] | None = None,
) -> Workload:
    """Build the GEMM list of one inference from a packed model's JSON.

    ``seq_len``/``batch`` default to the JSON's ``workload`` block, else 1. ``spike_rates`` maps a
    layer name to the spike rate of its input (overriding ``input_spike_rate``); a key
    ``"<name>/recurrent"`` sets the rate of the fed-back h. Spiking inputs are 1 bit wide.
    """
    doc, layers = load_packed_json(path_or_dict)
    wl = doc.get("workload") or {}
    if not isinstance(wl, Mapping):
        raise ValueError(f"packed field 'workload' must be an object, got {wl!r}")
    T = _positive_or_default("seq_len", seq_len, wl.get("seq_len", 1))
    B = _positive_or_default("batch", batch, wl.get("batch", 1))
    rates = dict(spike_rates or {})
    known = {p.name for p in layers} | {f"{p.name}/recurrent" for p in layers if p.kind == "lstm"}
    unknown = sorted(set(rates) - known)
    if unknown:
        raise ValueError(f"spike_rates names unknown layers {unknown}; allowed: {sorted(known)}")
    for key, value in rates.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"spike_rates[{key!r}] must be a number in [0, 1], got {value!r}")

    gemms: list[Gemm] = []
    for info in layers:
        in_rate = rates.get(info.name, info.input_spike_rate)
        common = dict(layer=info.name, weight_bits=info.weight_bits, max_paths=info.max_paths)
        if info.kind == "linear":
            if info.groups == 0:
                continue
            # A recurrent linear layer (a spiking cell's linear_hh) needs step t-1's output
            # at step t: T GEMMs of M = B, as the recurrent part of an LSTM layer.
            gemms.append(
                Gemm(
                    name=info.name,
                    part="recurrent" if info.recurrent else "linear",
                    M=B if info.recurrent else T * B,
                    repeats=T if info.recurrent else 1,
                    K=info.groups,
                    N=info.rows,
                    dense_k=info.cols,
                    nnz=info.nnz,
                    act_bits=1 if in_rate is not None else info.act_bits,
                    spike_rate=in_rate,
                    **common,
                )
            )
            continue
        rec_rate = rates.get(f"{info.name}/recurrent", info.recurrent_spike_rate)
        if fused:
            if info.groups == 0:
                continue
            # A fused step sees x and h together; it is a spiking GEMM only if both inputs spike.
            rate = None
            if in_rate is not None and rec_rate is not None:
                rate = (in_rate * info.input_size + rec_rate * info.hidden_size) / info.cols
            gemms.append(
                Gemm(
                    name=f"{info.name}/fused",
                    part="fused",
                    M=B,
                    K=info.groups,
                    N=info.rows,
                    repeats=T,
                    dense_k=info.cols,
                    nnz=info.nnz,
                    act_bits=1 if rate is not None else info.act_bits,
                    spike_rate=rate,
                    **common,
                )
            )
            continue
        nnz_in, nnz_rec = _split_nnz(info)
        g_in, g_rec = info.groups_per_split
        if g_in > 0:
            gemms.append(
                Gemm(
                    name=f"{info.name}/input",
                    part="input",
                    M=T * B,
                    K=g_in,
                    N=info.rows,
                    dense_k=info.input_size,
                    nnz=nnz_in,
                    act_bits=1 if in_rate is not None else info.act_bits,
                    spike_rate=in_rate,
                    **common,
                )
            )
        if g_rec > 0:
            gemms.append(
                Gemm(
                    name=f"{info.name}/recurrent",
                    part="recurrent",
                    M=B,
                    K=g_rec,
                    N=info.rows,
                    repeats=T,
                    dense_k=info.hidden_size,
                    nnz=nnz_rec,
                    act_bits=1 if rec_rate is not None else info.act_bits,
                    spike_rate=rec_rate,
                    **common,
                )
            )
    name = doc.get("model") if isinstance(doc.get("model"), str) else ""
    return Workload(tuple(gemms), name=name)


GEMM_FIELDS = tuple(f.name for f in fields(Gemm))
