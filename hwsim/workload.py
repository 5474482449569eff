"""Workloads: the GEMMs a model runs, built from a packed model's JSON (torch-free).

An LSTM layer over T steps with batch B is an input projection batched over the whole sequence
(M = T*B, K = input columns, N = 4H) plus T sequential recurrent GEMMs (M = B, K = hidden columns,
N = 4H): step t needs h_{t-1}, so the recurrent GEMMs cannot be batched. ``fused=True`` treats
[x ; h] as one K per step instead, as a naive accelerator does. With column combining, K is the
number of column groups of that part of the matrix (``groups_per_split``). The packed JSON is
read and checked by ``common.packed`` (``read_figures``), the one owner of that format.

A GRU layer is the same two GEMMs with N = 3H (gates r, z, n). nn.GRU's n gate is
tanh(W_in x + b_in + r * (W_hn h + b_hn)): the reset gate scales the finished product W_hn h, so
W_hn h is computed with W_hr h and W_hz h as one recurrent GEMM per step, and r acts after it.
It never fuses: [x ; h] in one product would add W_in x and W_hn h before r could scale one of
them. An LSTM with a projection (nn.LSTM's proj_size = P) feeds back h = W_hr (o * tanh(c)): its
recurrent GEMM has K = P, and the projection (kind "proj", N = P, K = H) is one more GEMM in every
step, sequential as the recurrent one, since step t + 1 needs its output.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields

from common.atomic import atomic_write_text
from common.packed import FLOAT_BITS, GATES, LayerFigures, read_figures


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
            atomic_write_text(path, text)
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


# ---------------------------------------------------------------------------------------------
# Packed JSON -> Workload


def _split_nnz(info: LayerFigures) -> tuple[int, ...]:
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
    doc, layers = read_figures(path_or_dict)
    wl = doc.get("workload") or {}
    if not isinstance(wl, Mapping):
        raise ValueError(f"packed field 'workload' must be an object, got {wl!r}")
    T = _positive_or_default("seq_len", seq_len, wl.get("seq_len", 1))
    B = _positive_or_default("batch", batch, wl.get("batch", 1))
    rates = dict(spike_rates or {})
    known = {p.name for p in layers} | {f"{p.name}/recurrent" for p in layers if p.kind in GATES}
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
        if info.kind in ("linear", "proj"):
            if info.groups == 0:
                continue
            # A recurrent linear layer (a spiking cell's linear_hh) needs step t-1's output
            # at step t, and an LSTM's projection makes the h that step t + 1 reads: T GEMMs of
            # M = B each, as the recurrent part of an LSTM layer.
            sequential = info.recurrent or info.kind == "proj"
            part = "proj" if info.kind == "proj" else "recurrent" if info.recurrent else "linear"
            gemms.append(
                Gemm(
                    name=info.name,
                    part=part,
                    M=B if sequential else T * B,
                    repeats=T if sequential else 1,
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
        if fused and info.kind == "lstm":  # a GRU never fuses: see the module docstring
            if info.groups == 0:
                continue
            # A fused step sees x and h together; it is a spiking GEMM only if both inputs spike.
            rate = None
            if in_rate is not None and rec_rate is not None:
                rate = (in_rate * info.input_size + rec_rate * info.state_size) / info.cols
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
                    dense_k=info.state_size,
                    nnz=nnz_rec,
                    act_bits=1 if rec_rate is not None else info.act_bits,
                    spike_rate=rec_rate,
                    **common,
                )
            )
    name = doc.get("model") if isinstance(doc.get("model"), str) else ""
    return Workload(tuple(gemms), name=name)


GEMM_FIELDS = tuple(f.name for f in fields(Gemm))
