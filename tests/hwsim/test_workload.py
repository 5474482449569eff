"""Building GEMM lists from packed JSON: LSTM decomposition, combining, validation, topology CSV."""

from __future__ import annotations

import copy
import json

import pytest

from hwsim.config import HwConfig
from hwsim.dataflow import gemm_cycles
from hwsim.models import linear_layer, lstm_layer, packed_doc, ptbc_dense
from hwsim.simulate import simulate
from hwsim.workload import Gemm, Workload, from_gemm_rows, from_packed_json, read_topology_csv


def tiny_lstm_doc(**layer_kw) -> dict:
    return packed_doc([lstm_layer("rnn", 3, 2, **layer_kw)], seq_len=4, batch=1)


def test_tiny_lstm_splits_into_batched_input_gemm_and_sequential_recurrent_gemms():
    wl = from_packed_json(tiny_lstm_doc())
    inp, rec = wl.gemms
    assert (inp.M, inp.K, inp.N, inp.repeats) == (4, 3, 8, 1)  # T*B, in, 4H
    assert (rec.M, rec.K, rec.N, rec.repeats) == (1, 2, 8, 4)  # B, H, 4H, T steps
    assert inp.weight_nnz + rec.weight_nnz == 8 * 5


def test_tiny_lstm_costs_counted_by_hand_on_a_4x4_ws_array():
    wl = from_packed_json(tiny_lstm_doc())
    res = simulate(wl, HwConfig(rows=4, cols=4, dataflow="ws"))
    inp, rec = res.gemms
    # input: ceil(3/4)*ceil(8/4) = 2 folds of 2*4 + 4 + 4 - 2 = 14 cycles, minus 1.
    assert inp.cost.cycles == 27 and inp.cost.tiles == 2
    # recurrent: 2 folds of 8 + 4 + 1 - 2 = 11 cycles, minus 1, for each of 4 steps.
    assert rec.cost.cycles == 4 * 21 and rec.cost.tiles == 8
    assert res.total.cycles == 111
    assert inp.cost.macs == 4 * 3 * 8 and rec.cost.macs == 4 * 2 * 8
    # SCALE-Sim ws element counts, 4 bytes each at 32 bits.
    assert inp.cost.ifmap_sram_read_bytes == 4 * 3 * 2 * 4
    assert inp.cost.filter_sram_read_bytes == 3 * 8 * 4
    assert inp.cost.ofmap_sram_write_bytes == 4 * 8 * 1 * 4
    assert res.layers[0].name == "rnn" and res.layers[0].cycles == 111


def test_fused_mode_runs_one_concatenated_gemm_per_step():
    wl = from_packed_json(tiny_lstm_doc(), fused=True)
    (g,) = wl.gemms
    assert (g.M, g.K, g.N, g.repeats) == (1, 5, 8, 4)
    res = simulate(wl, HwConfig(rows=4, cols=4))
    assert res.total.cycles == 4 * (2 * 2 * 11 - 1)


def test_seq_len_and_batch_arguments_override_the_json_defaults():
    wl = from_packed_json(tiny_lstm_doc(), seq_len=10, batch=3)
    inp, rec = wl.gemms
    assert (inp.M, rec.M, rec.repeats) == (30, 3, 10)


def test_linear_layer_is_one_gemm_batched_over_time():
    doc = packed_doc([linear_layer("decoder", 200, 50)], seq_len=150)
    (g,) = from_packed_json(doc).gemms
    assert (g.M, g.K, g.N, g.repeats) == (150, 200, 50, 1)


def test_combined_k_is_the_group_count_and_shrinks_folds():
    dense = from_packed_json(packed_doc([lstm_layer("l", 1000, 1000)], seq_len=150))
    comb_doc = packed_doc(
        [lstm_layer("l", 1000, 1000, groups_per_split=[334, 334], nnz=2_000_000, max_paths=3)],
        seq_len=150,
    )
    comb = from_packed_json(comb_doc)
    assert [g.K for g in comb] == [334, 334]
    assert [g.k_dense for g in comb] == [1000, 1000]
    cfg = HwConfig(rows=128, cols=128)
    d, c = simulate(dense, cfg), simulate(comb, cfg)
    for dg, cg in zip(d.gemms, c.gemms):
        assert cg.folds_per_repeat == 3 * 32 and dg.folds_per_repeat == 8 * 32
        assert cg.cost.cycles < dg.cost.cycles
    assert c.total.macs == 150 * 2_000_000  # nnz * M over both parts
    assert c.total.dense_macs == d.total.dense_macs == d.total.macs


def test_nnz_of_a_layer_is_shared_between_parts_by_packed_cells():
    doc = packed_doc([lstm_layer("l", 10, 30, groups_per_split=[4, 12], nnz=1001, max_paths=3)])
    inp, rec = from_packed_json(doc).gemms
    assert inp.weight_nnz + rec.weight_nnz == 1001
    assert abs(inp.weight_nnz - 1001 / 4) <= 1


def test_a_split_pruned_to_zero_groups_costs_nothing():
    doc = packed_doc([lstm_layer("l", 3, 2, groups_per_split=[0, 2], nnz=8)], seq_len=4)
    (rec,) = from_packed_json(doc).gemms
    assert rec.name == "l/recurrent" and rec.weight_nnz == 8
    empty = packed_doc([lstm_layer("l", 3, 2, groups_per_split=[0, 0], nnz=0)])
    assert len(from_packed_json(empty)) == 0


def test_explicit_nnz_per_split_is_used_when_present():
    layer = lstm_layer("l", 10, 30, groups_per_split=[4, 12], nnz=1000, max_paths=3)
    layer["nnz_per_split"] = [100, 900]
    inp, rec = from_packed_json(packed_doc([layer])).gemms
    assert (inp.weight_nnz, rec.weight_nnz) == (100, 900)


def test_spike_rates_mark_inputs_as_one_bit_spikes():
    doc = packed_doc([lstm_layer("l", 3, 2, input_spike_rate=0.2)])
    inp, rec = from_packed_json(doc, spike_rates={"l/recurrent": 0.5}).gemms
    assert (inp.spike_rate, inp.act_bits) == (0.2, 1)
    assert (rec.spike_rate, rec.act_bits) == (0.5, 1)


def test_ptbc_workload_has_two_gemms_per_lstm_layer_and_the_decoder():
    wl = from_packed_json(ptbc_dense())
    assert [g.name for g in wl] == [
        "rnns.0/input", "rnns.0/recurrent", "rnns.1/input", "rnns.1/recurrent",
        "rnns.2/input", "rnns.2/recurrent", "decoder",
    ]  # fmt: skip
    assert [(g.K, g.N) for g in wl][::2] == [(200, 4000), (1000, 4000), (1000, 800), (200, 50)]


def test_topology_csv_round_trips_and_sums_to_the_simulated_cycles(tmp_path):
    wl = from_packed_json(tiny_lstm_doc())
    out = tmp_path / "topo.csv"
    text = wl.to_topology_csv(out)
    assert out.read_text() == text
    assert text.splitlines()[0] == "Layer, M, N, K,"
    rows = read_topology_csv(text)
    assert len(rows) == 1 + 4  # the recurrent GEMM expands to one row per step
    assert rows[0] == ("rnn/input", 4, 8, 3)
    total = sum(gemm_cycles(m, k, n, 4, 4, "ws") for _, m, n, k in rows)
    assert total == simulate(wl, HwConfig(rows=4, cols=4)).total.cycles
    assert len(read_topology_csv(wl.to_topology_csv(expand_repeats=False))) == 2


def test_from_gemm_rows_reads_scalesim_order():
    (g,) = from_gemm_rows([(1, 4000, 1000)]).gemms
    assert (g.M, g.N, g.K) == (1, 4000, 1000)


def _bad(mutate):
    doc = copy.deepcopy(tiny_lstm_doc())
    mutate(doc)
    return doc


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other/1"), "'format' must be 'lstmpack.packed/1'"),
        (lambda d: d.update(layers=[]), "'layers' must be a non-empty list"),
        (
            lambda d: d["layers"][0].update(kind="rnn"),
            "'kind' must be one of lstm, gru, proj, linear",
        ),
        (lambda d: d["layers"][0].pop("groups"), "missing required field 'groups'"),
        (lambda d: d["layers"][0].update(rows=0), "'rows' must be an integer >= 1"),
        (
            lambda d: d["layers"][0].update(groups_per_split=[3]),
            "'groups_per_split' must be a list of 2",
        ),
        (lambda d: d["layers"][0].update(groups_per_split=[4, 2], groups=6), "0..split width"),
        (lambda d: d["layers"][0].update(groups_per_split=[-1, 2], groups=1), "0..split width"),
        (lambda d: d["layers"][0].update(groups=4), r"sum\(groups_per_split\) = 5"),
        (
            lambda d: d["layers"][0].update(col_splits=[0, 2, 5]),
            r"'col_splits' must be \[0, 3, 5\]",
        ),
        (
            lambda d: d["layers"][0].update(weight_bits=64),
            "'weight_bits' must be an integer in 1..32",
        ),
        (lambda d: d["layers"][0].update(input_spike_rate=1.5), "'input_spike_rate' must be null"),
        (lambda d: d["layers"][0].update(nnz=10**6), "'nnz' must be at most rows"),
        (lambda d: d["layers"].append(dict(d["layers"][0])), "names must be unique"),
    ],
)
def test_malformed_packed_documents_raise_value_error_naming_the_field(mutate, message):
    with pytest.raises(ValueError, match=message):
        from_packed_json(_bad(mutate))


def test_unreadable_packed_files_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        from_packed_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        from_packed_json(bad)
    good = tmp_path / "packed.json"
    good.write_text(json.dumps(tiny_lstm_doc()))
    assert len(from_packed_json(good)) == 2


def test_unknown_spike_rate_layer_and_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="unknown layers"):
        from_packed_json(tiny_lstm_doc(), spike_rates={"nope": 0.1})
    with pytest.raises(ValueError, match="seq_len must be a positive integer"):
        from_packed_json(tiny_lstm_doc(), seq_len=0)
    with pytest.raises(ValueError, match="M must be a positive integer"):
        Gemm("g", M=0, K=1, N=1)
    with pytest.raises(ValueError, match="nnz must be None or an integer in 0..K"):
        Gemm("g", M=1, K=2, N=2, nnz=5)
    with pytest.raises(ValueError, match="names must be unique"):
        Workload((Gemm("g", 1, 1, 1), Gemm("g", 1, 1, 1)))


def test_a_recurrent_linear_layer_is_T_sequential_gemms_of_batch_rows():
    from hwsim.workload import from_packed_json

    def layer(recurrent):
        return {"name": "cell.linear_hh", "kind": "linear", "rows": 64, "cols": 16,
                "col_splits": [0, 16], "groups": 16, "groups_per_split": [16], "max_paths": 1,
                "nnz": 1024, "weight_bits": 32, "act_bits": 32, "recurrent": recurrent}  # fmt: skip

    doc = {"format": "lstmpack.packed/1", "workload": {"seq_len": 7, "batch": 2}}
    (g,) = from_packed_json({**doc, "layers": [layer(True)]}).gemms
    assert (g.M, g.K, g.N, g.repeats) == (2, 16, 64, 7)
    (h,) = from_packed_json({**doc, "layers": [layer(False)]}).gemms
    assert (h.M, h.repeats) == (14, 1)


def test_recurrent_must_be_a_boolean_on_a_linear_layer():
    from hwsim.workload import from_packed_json

    bad = {"name": "x", "kind": "linear", "rows": 4, "cols": 4, "col_splits": [0, 4],
           "groups": 4, "groups_per_split": [4], "max_paths": 1, "nnz": 16, "weight_bits": 32,
           "act_bits": 32, "recurrent": "yes"}  # fmt: skip
    with pytest.raises(ValueError, match="recurrent"):
        from_packed_json({"format": "lstmpack.packed/1", "layers": [bad]})
