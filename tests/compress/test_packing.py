"""Combining, packed layers, packed_matmul and the packed files (PACKED_FORMAT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress.kernels.column_combine import group_columns, group_columns_split, group_conflicts
from compress.packing import (
    FORMAT,
    PackedLayer,
    PackedModel,
    combine,
    pack_layer,
    packed_matmul,
    unpack_dense,
)

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def weights(draw, integer: bool = False):
    rows = draw(st.integers(1, 24))
    cols = draw(st.integers(1, 40))
    density = draw(st.sampled_from([0.0, 0.1, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.random((rows, cols)) < density
    if integer:
        # few distinct magnitudes, so ties in |w| are common
        W = rng.integers(-3, 4, (rows, cols)).astype(np.float32)
    else:
        W = rng.standard_normal((rows, cols)).astype(np.float32)
    W = np.where(mask, W, 0).astype(np.float32)
    alpha = draw(st.integers(1, 6))
    gamma = draw(st.sampled_from([0.0, 0.3, 1.0, 2.5]))
    return W, alpha, gamma


@SETTINGS
@given(weights(), st.sampled_from(["greedy", "reference"]))
def test_packed_matmul_equals_masked_dense_matmul(case, strategy):
    W, alpha, gamma = case
    ptr, gcols = group_columns(W != 0, alpha, gamma, strategy=strategy)
    W_combined, control, values, stats = combine(W, ptr, gcols)
    layer = pack_layer(W, ptr, gcols, name="fc", max_paths=alpha, gamma=gamma)
    np.testing.assert_array_equal(unpack_dense(layer), W_combined)
    X = np.random.default_rng(0).standard_normal((W.shape[1], 5)).astype(np.float32)
    np.testing.assert_allclose(packed_matmul(layer, X), W_combined @ X, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(packed_matmul(layer, X[:, 0]), W_combined @ X[:, 0], atol=1e-5)


@SETTINGS
@given(weights(integer=True))
def test_packed_matmul_is_exact_for_integer_weights_and_keeps_largest_lowest_column(case):
    W, alpha, gamma = case
    ptr, gcols = group_columns(W != 0, alpha, gamma)
    scale = np.full(W.shape[0], 0.5, np.float32)
    layer = pack_layer(W, ptr, gcols, name="q", max_paths=alpha, gamma=gamma, scale=scale,
                       weight_bits=4)  # fmt: skip
    X = np.random.default_rng(1).integers(-5, 6, (W.shape[1], 3)).astype(np.float32)
    W_masked = unpack_dense(layer)
    np.testing.assert_array_equal(packed_matmul(layer, X), W_masked @ X)
    for g in range(len(ptr) - 1):
        cols = gcols[ptr[g] : ptr[g + 1]]
        for r in range(W.shape[0]):
            sub = W[r, cols]
            if not sub.any():
                assert layer.control[r, g] == -1 and layer.values[r, g] == 0
                continue
            want = cols[np.flatnonzero(np.abs(sub) == np.abs(sub).max())[0]]
            assert layer.control[r, g] == want
            assert layer.values[r, g] == W[r, want]
            np.testing.assert_array_equal(W_masked[r, cols] != 0, cols == want)


@SETTINGS
@given(weights())
def test_combine_figures_match_the_groups(case):
    W, alpha, gamma = case
    ptr, gcols = group_columns(W != 0, alpha, gamma)
    W_combined, control, _, stats = combine(W, ptr, gcols)
    assert stats.nnz_before == np.count_nonzero(W)
    assert stats.nnz == np.count_nonzero(W_combined) == np.count_nonzero(control >= 0)
    # the weights combining prunes are exactly the groups' conflicts
    assert stats.pruned_conflicts == int(group_conflicts(W != 0, ptr, gcols).sum())
    l1 = np.abs(W).sum(dtype=np.float64) - np.abs(W_combined).sum(dtype=np.float64)
    assert stats.pruned_l1 == pytest.approx(l1, abs=1e-4)
    assert stats.groups == len(ptr) - 1
    layer = pack_layer(W, ptr, gcols, name="fc", max_paths=alpha, gamma=gamma)
    assert layer.groups == stats.groups and layer.nnz == stats.nnz
    assert layer.packing_efficiency == pytest.approx(stats.packing_efficiency)
    assert layer.column_reduction == stats.column_reduction
    assert layer.tiles(4, 3) == stats.tiles(4, 3)
    assert layer.pruned_conflicts == stats.pruned_conflicts


def test_figures_on_a_hand_example():
    W = np.array([[1.0, -2.0, 0.0, 0.0], [0.0, 0.5, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]], np.float32)
    ptr = np.array([0, 2, 3], np.int64)
    gcols = np.array([0, 1, 2], np.int64)
    W_combined, control, values, stats = combine(W, ptr, gcols)
    assert control.tolist() == [[1, -1], [1, 2], [0, -1]]
    assert values.tolist() == [[-2.0, 0.0], [0.5, 3.0], [4.0, 0.0]]
    assert (stats.nnz_before, stats.nnz, stats.pruned_conflicts) == (5, 4, 1)
    assert stats.pruned_l1 == pytest.approx(1.0)
    assert stats.packing_efficiency == pytest.approx(4 / 6)
    assert stats.column_reduction == pytest.approx(2.0)
    assert stats.tiles(2, 1) == 2 * 2
    assert stats.tiles(128, 128) == 1


def test_combine_rejects_groups_that_miss_a_nonzero_column():
    W = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="misses nonzero column"):
        combine(W, np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="ascending"):
        combine(W, np.array([0, 3]), np.array([2, 0, 1]))


def lstm_layer(seed: int = 0, weight_bits: int = 32) -> PackedLayer:
    rng = np.random.default_rng(seed)
    input_size, hidden = 5, 3
    W = np.where(rng.random((4 * hidden, input_size + hidden)) < 0.4, rng.standard_normal(
        (4 * hidden, input_size + hidden)), 0).astype(np.float32)  # fmt: skip
    scale = None
    if weight_bits < 32:
        W = np.clip(np.round(W * 3), -7, 7)
        scale = rng.random(4 * hidden).astype(np.float32) + 0.1
    ptr, gcols, per_split = group_columns_split(W != 0, [0, input_size, input_size + hidden], 3,
                                                1.0)  # fmt: skip
    layer = pack_layer(W, ptr, gcols, name="rnns.0", kind="lstm", input_size=input_size,
                       hidden_size=hidden, max_paths=3, gamma=1.0, scale=scale,
                       weight_bits=weight_bits, bias=rng.standard_normal(4 * hidden))  # fmt: skip
    assert layer.groups_per_split == per_split.tolist()
    return layer


def assert_same_layer(a: PackedLayer, b: PackedLayer) -> None:
    assert a.to_json() == b.to_json()
    for key, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, b.arrays()[key])
        assert arr.dtype == b.arrays()[key].dtype


def test_model_save_load_round_trip_follows_packed_format(tmp_path):
    layers = [lstm_layer(0), lstm_layer(1, weight_bits=4)]
    layers[1].name = "rnns.1"
    W = np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32)
    ptr, gcols = group_columns(W != 0, 2, 1.0)
    layers.append(pack_layer(W, ptr, gcols, name="decoder", max_paths=2, gamma=1.0,
                             input_spike_rate=0.25))  # fmt: skip
    model = PackedModel(layers, model="ptbc", workload={"seq_len": 150, "batch": 1})
    json_path, npz_path = model.save(tmp_path / "packed")
    assert json_path.name == "packed.json" and npz_path.name == "packed.npz"
    meta = json.loads(json_path.read_text())
    assert meta["format"] == FORMAT and meta["model"] == "ptbc"
    first = meta["layers"][0]
    assert first["kind"] == "lstm" and first["col_splits"] == [0, 5, 8]
    assert first["groups"] == sum(first["groups_per_split"])
    assert first["rows"] == 12 and first["input_size"] == 5 and first["hidden_size"] == 3
    assert meta["layers"][1]["weight_bits"] == 4 and meta["layers"][2]["col_splits"] == [0, 4]
    with np.load(npz_path) as npz:
        assert {"rnns.0/control", "rnns.0/values", "rnns.1/scale", "decoder/group_ptr"} <= set(
            npz.files
        )
        assert "rnns.0/scale" not in npz.files
    loaded = PackedModel.load(tmp_path / "packed")
    assert loaded.model == "ptbc" and loaded.workload == {"seq_len": 150, "batch": 1}
    for a, b in zip(model.layers, loaded.layers):
        assert_same_layer(a, b)
    X = np.random.default_rng(2).standard_normal(8).astype(np.float32)
    np.testing.assert_allclose(packed_matmul(loaded.layers[1], X), unpack_dense(layers[1]) @ X,
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_layer_save_load_round_trip(tmp_path):
    layer = lstm_layer(3)
    layer.save(tmp_path / "one")
    assert_same_layer(layer, PackedLayer.load(tmp_path / "one"))
    assert_same_layer(layer, PackedLayer.load(tmp_path / "one", name="rnns.0"))
    with pytest.raises(ValueError, match="no layer named"):
        PackedLayer.load(tmp_path / "one", name="nope")


def test_pack_layer_rejects_groups_crossing_the_lstm_split():
    W = np.ones((4, 3), np.float32)
    ptr = np.array([0, 2, 3])
    gcols = np.array([1, 2, 0])  # group {1, 2} crosses input_size=2
    with pytest.raises(ValueError, match="crosses"):
        pack_layer(W, ptr, gcols, name="l", kind="lstm", input_size=2, hidden_size=1,
                   max_paths=2, gamma=4.0)  # fmt: skip


def corrupt(tmp_path, edit_json=None, edit_arrays=None):
    stem = tmp_path / "packed"
    PackedModel([lstm_layer(0)]).save(stem)
    if edit_json is not None:
        meta = json.loads((tmp_path / "packed.json").read_text())
        edit_json(meta)
        (tmp_path / "packed.json").write_text(json.dumps(meta))
    if edit_arrays is not None:
        with np.load(tmp_path / "packed.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        edit_arrays(arrays)
        np.savez(tmp_path / "packed.npz", **arrays)
    return stem


def _set(key, value):
    def edit(meta):
        meta["layers"][0][key] = value

    return edit


def _drop(key):
    def edit(meta):
        del meta["layers"][0][key]

    return edit


def _arr(key, fn):
    def edit(arrays):
        arrays[key] = fn(arrays[key])

    return edit


@pytest.mark.parametrize(
    ("edit_json", "edit_arrays", "match"),
    [
        (lambda m: m.update(format="other/9"), None, r"packed\.json: field 'format'"),
        (lambda m: m.update(layers={}), None, r"packed\.json: field 'layers'"),
        (_drop("rows"), None, r"layers\[0\] .*missing required field 'rows'"),
        (_set("kind", "conv"), None, r"layers\[0\] .*field 'kind'"),
        (_set("groups", 999), None, r"layers\[0\] .*field 'groups'"),
        (_set("nnz", -1), None, r"nnz"),
        (_set("groups_per_split", [1, 1]), None, r"groups_per_split"),
        (_set("col_splits", [0, 8]), None, r"col_splits"),
        (_set("input_spike_rate", 2.0), None, r"input_spike_rate"),
        (_set("weight_bits", "32"), None, r"weight_bits"),
        (_set("weight_bits", 24), None, r"weight_bits"),
        (None, _arr("rnns.0/control", lambda a: a.astype(np.int64)), r"control"),
        (None, _arr("rnns.0/control", lambda a: np.full_like(a, 7)), r"control"),
        (None, _arr("rnns.0/values", lambda a: a[:, :-1]), r"values"),
        (None, _arr("rnns.0/group_cols", lambda a: a[::-1].copy()), r"group_ptr/group_cols"),
        (None, lambda arrays: arrays.pop("rnns.0/group_ptr"), r"packed\.npz: rnns\.0/group_ptr"),
    ],
)
def test_malformed_packed_files_raise_value_error_naming_file_and_field(
    tmp_path, edit_json, edit_arrays, match
):
    stem = corrupt(tmp_path, edit_json, edit_arrays)
    with pytest.raises(ValueError, match=match) as info:
        PackedModel.load(stem)
    assert "packed." in str(info.value)


def test_unreadable_packed_files_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.json"):
        PackedModel.load(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json"):
        PackedModel.load(tmp_path / "bad")


def test_packed_matmul_rejects_wrong_input_shape():
    layer = lstm_layer(0)
    with pytest.raises(ValueError, match="X must have shape"):
        packed_matmul(layer, np.ones(3))


def test_quantized_layer_rejects_values_outside_the_bit_range():
    W = np.array([[9.0, 0.0], [0.0, -3.0]], np.float32)
    ptr, gcols = np.array([0, 1, 2]), np.array([0, 1])
    scale = np.ones(2, np.float32)
    with pytest.raises(ValueError, match=r"values: must lie in \[-8, 7\]"):
        pack_layer(W, ptr, gcols, name="q", max_paths=1, gamma=0.0, scale=scale, weight_bits=4)
    with pytest.raises(ValueError, match="integer-valued"):
        pack_layer(W / 2, ptr, gcols, name="q", max_paths=1, gamma=0.0, scale=scale, weight_bits=8)
    with pytest.raises(ValueError, match="scale: required"):
        pack_layer(W, ptr, gcols, name="q", max_paths=1, gamma=0.0, weight_bits=8)


def test_recurrent_flag_and_nnz_per_split_round_trip(tmp_path):
    from compress.packing import PackedModel, pack_layer

    rng = np.random.default_rng(3)
    W = rng.standard_normal((8, 6)) * (rng.random((8, 6)) < 0.5)
    ptr = np.arange(7, dtype=np.int64)
    cols = np.arange(6, dtype=np.int64)
    hh = pack_layer(W, ptr, cols, name="cell.linear_hh", max_paths=1, gamma=0.0, recurrent=True)
    lstm = pack_layer(
        W, ptr, cols, name="rnn", max_paths=1, gamma=0.0, kind="lstm", input_size=4, hidden_size=2
    )
    assert lstm.nnz_per_split == [int((W[:, :4] != 0).sum()), int((W[:, 4:] != 0).sum())]
    PackedModel([hh, lstm]).save(tmp_path / "p")
    back = PackedModel.load(tmp_path / "p")
    assert back.layers[0].recurrent and not back.layers[1].recurrent
    assert back.layers[1].to_json()["nnz_per_split"] == lstm.nnz_per_split


def test_recurrent_is_refused_on_an_lstm_layer(tmp_path):
    import json

    from compress.packing import PackedModel, pack_layer

    W = np.eye(8, 6)
    layer = pack_layer(W, np.arange(7), np.arange(6), name="r", max_paths=1, gamma=0.0,
                       kind="lstm", input_size=4, hidden_size=2)  # fmt: skip
    PackedModel([layer]).save(tmp_path / "p")
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["layers"][0]["recurrent"] = True
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="recurrent"):
        PackedModel.load(tmp_path / "p")
