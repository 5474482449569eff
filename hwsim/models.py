"""Builders of packed-model JSON documents (``common.packed``'s format) without any arrays.

For what-if studies before a model is compressed, for the benchmark and for tests: a dense layer is
one where every column is its own group and every weight is nonzero.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.packed import FORMAT, GATES


def lstm_layer(
    name: str,
    input_size: int,
    hidden_size: int,
    groups_per_split: Sequence[int] | None = None,
    nnz: int | None = None,
    max_paths: int = 1,
    weight_bits: int = 32,
    act_bits: int = 32,
    input_spike_rate: float | None = None,
    recurrent_spike_rate: float | None = None,
    proj_size: int | None = None,
) -> dict:
    """One packed LSTM layer entry; dense (groups = columns, all nonzero) by default. With
    `proj_size` the fed-back state is proj_size wide (its projection is `proj_layer`)."""
    return _gated(
        "lstm", name, input_size, hidden_size, groups_per_split, nnz, max_paths, weight_bits,
        act_bits, input_spike_rate, recurrent_spike_rate, proj_size,
    )  # fmt: skip


def gru_layer(
    name: str,
    input_size: int,
    hidden_size: int,
    groups_per_split: Sequence[int] | None = None,
    nnz: int | None = None,
    max_paths: int = 1,
    weight_bits: int = 32,
    act_bits: int = 32,
    input_spike_rate: float | None = None,
    recurrent_spike_rate: float | None = None,
) -> dict:
    """One packed GRU layer entry (3H gate rows); dense by default."""
    return _gated(
        "gru", name, input_size, hidden_size, groups_per_split, nnz, max_paths, weight_bits,
        act_bits, input_spike_rate, recurrent_spike_rate, None,
    )  # fmt: skip


def _gated(
    kind: str,
    name: str,
    input_size: int,
    hidden_size: int,
    groups_per_split: Sequence[int] | None,
    nnz: int | None,
    max_paths: int,
    weight_bits: int,
    act_bits: int,
    input_spike_rate: float | None,
    recurrent_spike_rate: float | None,
    proj_size: int | None,
) -> dict:
    state = proj_size or hidden_size  # the fed-back state: the recurrent columns
    rows, cols = GATES[kind] * hidden_size, input_size + state
    gps = list(groups_per_split) if groups_per_split is not None else [input_size, state]
    sizes = {"input_size": input_size, "hidden_size": hidden_size}
    if proj_size is not None:
        sizes["proj_size"] = proj_size
    tail = dict(
        weight_bits=weight_bits,
        act_bits=act_bits,
        input_spike_rate=input_spike_rate,
        recurrent_spike_rate=recurrent_spike_rate,
    )
    return _entry(name, kind, rows, cols, gps, nnz, max_paths, sizes, tail)


def proj_layer(
    name: str,
    hidden_size: int,
    proj_size: int,
    groups: int | None = None,
    nnz: int | None = None,
    max_paths: int = 1,
    weight_bits: int = 32,
    act_bits: int = 32,
) -> dict:
    """One packed LSTM projection W_hr entry (proj_size rows by hidden_size columns); dense by
    default."""
    gps = [hidden_size if groups is None else groups]
    tail = dict(weight_bits=weight_bits, act_bits=act_bits)
    return _entry(name, "proj", proj_size, hidden_size, gps, nnz, max_paths, {}, tail)


def linear_layer(
    name: str,
    in_features: int,
    out_features: int,
    groups: int | None = None,
    nnz: int | None = None,
    max_paths: int = 1,
    weight_bits: int = 32,
    act_bits: int = 32,
    input_spike_rate: float | None = None,
) -> dict:
    """One packed linear layer entry; dense by default."""
    gps = [in_features if groups is None else groups]
    tail = dict(weight_bits=weight_bits, act_bits=act_bits, input_spike_rate=input_spike_rate)
    return _entry(name, "linear", out_features, in_features, gps, nnz, max_paths, {}, tail)


def _entry(
    name: str,
    kind: str,
    rows: int,
    cols: int,
    groups_per_split: list[int],
    nnz: int | None,
    max_paths: int,
    sizes: dict,
    widths_and_rates: dict,
) -> dict:
    """A layer entry, its keys in the order the pipeline writes them: a recurrent layer's
    `sizes` after cols, nothing pruned by combining (gamma 0), nnz every packed cell unless given,
    then the widths and spike rates."""
    groups = sum(groups_per_split)
    nnz = rows * groups if nnz is None else nnz
    return {
        "name": name,
        "kind": kind,
        "rows": rows,
        "cols": cols,
        **sizes,
        "col_splits": [0, sizes["input_size"], cols] if sizes else [0, cols],
        "groups": groups,
        "groups_per_split": groups_per_split,
        "max_paths": max_paths,
        "gamma": 0.0,
        "nnz_before": nnz,
        "nnz": nnz,
        "pruned_conflicts": 0,
        "pruned_l1": 0.0,
        **widths_and_rates,
    }


def packed_doc(layers: Sequence[dict], model: str = "", seq_len: int = 1, batch: int = 1) -> dict:
    """A whole packed.json document."""
    return {
        "format": FORMAT,
        "model": model,
        "workload": {"seq_len": seq_len, "batch": batch},
        "layers": list(layers),
    }


# AWD-LSTM on character-level PTB: emsize 200, nhid 1000, 3 layers, the last one sized back to the
# embedding so the decoder can be tied; 50 characters.
PTBC_SIZES = ((200, 1000), (1000, 1000), (1000, 200))
PTBC_VOCAB = 50


def ptbc_dense(seq_len: int = 150, batch: int = 1) -> dict:
    """The dense ptbc model as a packed document (3 LSTM layers + tied 50 x 200 decoder)."""
    layers = [lstm_layer(f"rnns.{i}", i_sz, h) for i, (i_sz, h) in enumerate(PTBC_SIZES)]
    layers.append(linear_layer("decoder", PTBC_SIZES[-1][1], PTBC_VOCAB))
    return packed_doc(layers, model="ptbc", seq_len=seq_len, batch=batch)
