"""The packed kinds "gru" and "proj" and an LSTM's proj_size: they round-trip through the files,
are checked like "lstm", and files written before they existed still load unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.packed import FORMAT, PackedModel, read_figures
from compress.packing import pack_layer, unpack_biases, unpack_dense


def _matrix(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random((rows, cols)) < 0.6, rng.standard_normal((rows, cols)), 0).astype(
        np.float32
    )


def _singletons(cols: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(cols + 1, dtype=np.int64), np.arange(cols, dtype=np.int64)


def _gru(**kw):
    W = _matrix(9, 7)  # hidden 3 (rows r, z, n), input 4
    return pack_layer(W, *_singletons(7), name="enc.l0", kind="gru", input_size=4, hidden_size=3,
                      max_paths=1, gamma=0.0, **kw)  # fmt: skip


def test_gru_layers_keep_both_biases_apart_through_the_files(tmp_path):
    b_ih, b_hh = np.arange(9, dtype=np.float32), -np.arange(9, dtype=np.float32)
    layer = _gru(bias=b_ih, recurrent_bias=b_hh)
    assert layer.col_splits == [0, 4, 7]  # the default split of a gated kind
    PackedModel([layer]).save(tmp_path / "p")
    (back,) = PackedModel.load(tmp_path / "p").layers
    assert back.kind == "gru" and (back.input_size, back.hidden_size) == (4, 3)
    np.testing.assert_array_equal(unpack_dense(back), unpack_dense(layer))
    biases = unpack_biases(back)
    np.testing.assert_array_equal(biases["bias_ih"], b_ih)
    np.testing.assert_array_equal(biases["bias_hh"], b_hh)


def test_a_projected_lstm_and_its_projection_round_trip(tmp_path):
    W = _matrix(12, 5)  # hidden 3, input 3, proj 2: (4H, in + P)
    lstm = pack_layer(W, *_singletons(5), name="l0", kind="lstm", input_size=3, hidden_size=3,
                      proj_size=2, max_paths=1, gamma=0.0, bias=np.ones(12, np.float32))  # fmt: skip
    proj = pack_layer(_matrix(2, 3, 1), *_singletons(3), name="l0.proj", kind="proj",
                      max_paths=1, gamma=0.0)  # fmt: skip
    PackedModel([lstm, proj]).save(tmp_path / "p")
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["layers"][0]["proj_size"] == 2 and "proj_size" not in doc["layers"][1]
    _, (fig_l, fig_p) = read_figures(tmp_path / "p.json")
    assert (fig_l.proj_size, fig_l.state_size, fig_p.kind) == (2, 2, "proj")
    back = PackedModel.load(tmp_path / "p").layers
    assert back[0].proj_size == 2 and back[1].kind == "proj"
    assert unpack_biases(back[1]) == {}  # a projection has no bias
    lstm_b = unpack_biases(back[0])  # an LSTM's b_ih + b_hh in one, b_hh zero
    np.testing.assert_array_equal(lstm_b["bias_ih"], np.ones(12, np.float32))
    assert not lstm_b["bias_hh"].any()


def test_a_plain_lstm_writes_no_proj_size():
    W = _matrix(12, 6)
    layer = pack_layer(W, *_singletons(6), name="l", kind="lstm", input_size=3, hidden_size=3,
                       max_paths=1, gamma=0.0)  # fmt: skip
    assert "proj_size" not in layer.to_json()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(recurrent_bias=np.zeros(9, np.float32), kind="lstm"), "recurrent_bias"),
        (dict(proj_size=2), "proj_size"),
        (dict(recurrent_bias=np.zeros(4, np.float32)), r"recurrent_bias: must be a float32 array"),
    ],
)
def test_what_a_kind_cannot_hold_is_refused_naming_the_field(kw, message):
    kind = kw.pop("kind", "gru")
    W = _matrix(9 if kind == "gru" else 12, 7 if kind == "gru" else 6)
    sizes = dict(input_size=4 if kind == "gru" else 3, hidden_size=3)
    with pytest.raises(ValueError, match=message):
        pack_layer(W, *_singletons(W.shape[1]), name="x", kind=kind, max_paths=1, gamma=0.0,
                   **sizes, **kw)  # fmt: skip


def _old_file(tmp_path):
    """A packed file as lstmpack wrote it before the kinds "gru" and "proj": its JSON written out
    here by hand, a GRU layer packed as a recurrent linear layer and an LSTM without proj_size."""
    rng = np.random.default_rng(0)
    layers, arrays = [], {}
    for name, kind, rows, cols, splits, extra in (
        ("rnn.0", "lstm", 8, 5, [0, 3, 5], {"input_size": 3, "hidden_size": 2}),
        ("gru.0", "linear", 6, 5, [0, 5], {}),
    ):
        values = rng.standard_normal((rows, cols)).astype(np.float32)
        arrays.update({f"{name}/group_ptr": np.arange(cols + 1, dtype=np.int64),
                       f"{name}/group_cols": np.arange(cols, dtype=np.int64),
                       f"{name}/control": np.tile(np.arange(cols, dtype=np.int32), (rows, 1)),
                       f"{name}/values": values,
                       f"{name}/bias": np.zeros(rows, np.float32)})  # fmt: skip
        entry = {"name": name, "kind": kind, "rows": rows, "cols": cols, **extra,
                 "col_splits": splits, "groups": cols,
                 "groups_per_split": [b - a for a, b in zip(splits, splits[1:])],
                 "max_paths": 1, "gamma": 0.0, "nnz_before": rows * cols, "nnz": rows * cols,
                 "pruned_conflicts": 0, "pruned_l1": 0.0, "weight_bits": 32, "act_bits": 32,
                 "input_spike_rate": None, "recurrent_spike_rate": None,
                 "nnz_per_split": [rows * (b - a) for a, b in zip(splits, splits[1:])]}  # fmt: skip
        if kind == "linear":
            entry["recurrent"] = True
        layers.append(entry)
    doc = {"format": FORMAT, "model": "old", "workload": {"seq_len": 5, "batch": 1},
           "layers": layers}  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(doc))
    np.savez(tmp_path / "old.npz", **arrays)
    return tmp_path / "old"


def test_a_file_written_before_the_new_kinds_still_loads_and_costs_as_before(tmp_path):
    from hwsim.workload import from_packed_json

    stem = _old_file(tmp_path)
    lstm, gru = PackedModel.load(stem).layers
    assert (lstm.kind, lstm.proj_size, lstm.recurrent_bias) == ("lstm", None, None)
    assert (gru.kind, gru.recurrent) == ("linear", True)
    gemms = {g.name: g for g in from_packed_json(stem.with_suffix(".json"))}
    assert gemms["rnn.0/recurrent"].k_dense == 2  # hidden_size, as before
    assert (gemms["gru.0"].K, gemms["gru.0"].repeats) == (5, 5)  # the old fused upper bound
