"""hwsim costs a GRU layer (3 gate blocks, the n gate's recurrent product one GEMM per step) and
an LSTM with a projection (the recurrence over proj_size, the projection a GEMM in every step),
each equal to the sum of its GEMMs counted by hand."""

from __future__ import annotations

import re

import pytest

from hwsim.config import HwConfig
from hwsim.models import gru_layer, lstm_layer, packed_doc, proj_layer
from hwsim.simulate import simulate
from hwsim.workload import from_packed_json

WS_4x4 = HwConfig(rows=4, cols=4, dataflow="ws")


def ws_cycles(M: int, K: int, N: int, R: int = 4, C: int = 4) -> int:
    """SCALE-Sim's weight-stationary count, written out again for the hand checks below."""
    return -(-K // R) * -(-N // C) * (2 * R + C + M - 2) - 1


def test_a_gru_layer_is_a_batched_input_gemm_and_one_3h_gemm_per_step():
    # input 3, hidden 3: W_ih 9 x 3, W_hh 9 x 3 (gate rows r, z, n); T = 4, B = 1
    wl = from_packed_json(packed_doc([gru_layer("gru", 3, 3)], seq_len=4, batch=1))
    inp, rec = wl.gemms
    assert (inp.part, inp.M, inp.K, inp.N, inp.repeats) == ("input", 4, 3, 9, 1)
    # W_hr h, W_hz h and W_hn h together: the reset gate scales W_hn h after the product
    assert (rec.part, rec.M, rec.K, rec.N, rec.repeats) == ("recurrent", 1, 3, 9, 4)
    res = simulate(wl, WS_4x4)
    # input: ceil(3/4) * ceil(9/4) = 3 folds of 2*4 + 4 + 4 - 2 = 14 cycles, minus 1
    assert res.gemms[0].cost.cycles == 3 * 14 - 1 == ws_cycles(4, 3, 9) == 41
    # recurrent: 3 folds of 2*4 + 4 + 1 - 2 = 11 cycles, minus 1, in each of the 4 steps
    assert res.gemms[1].cost.cycles == 4 * (3 * 11 - 1) == 4 * ws_cycles(1, 3, 9) == 128
    assert res.total.cycles == 169 and res.layers[0].name == "gru"
    assert res.total.macs == 4 * 3 * 9 + 4 * 3 * 9
    assert res.total.dense_macs == 4 * 6 * 9  # every weight of [W_ih | W_hh] once per step


def test_the_exact_gru_cost_is_below_the_old_one_product_per_step_bound():
    # before the "gru" kind a GRU was packed as a recurrent linear layer: T GEMMs with K = in + H
    exact = simulate(from_packed_json(packed_doc([gru_layer("g", 3, 3)], seq_len=4)), WS_4x4)
    assert exact.total.cycles < 4 * ws_cycles(1, 6, 9) == 260


def test_a_projected_lstm_recurs_over_proj_size_and_projects_in_every_step():
    # input 3, hidden 3, proj 2: [W_ih | W_hh] is 12 x (3 + 2), W_hr 2 x 3; T = 4, B = 1
    doc = packed_doc(
        [lstm_layer("lstm", 3, 3, proj_size=2), proj_layer("lstm.proj", 3, 2)], seq_len=4
    )
    inp, rec, proj = from_packed_json(doc).gemms
    assert (inp.M, inp.K, inp.N, inp.repeats) == (4, 3, 12, 1)
    assert (rec.M, rec.K, rec.N, rec.repeats, rec.k_dense) == (1, 2, 12, 4, 2)
    assert (proj.part, proj.M, proj.K, proj.N, proj.repeats) == ("proj", 1, 3, 2, 4)
    res = simulate(from_packed_json(doc), WS_4x4)
    by_name = {g.gemm.name: g.cost.cycles for g in res.gemms}
    assert by_name["lstm/input"] == 3 * 14 - 1 == 41
    assert by_name["lstm/recurrent"] == 4 * (3 * 11 - 1) == 128
    assert by_name["lstm.proj"] == 4 * (1 * 11 - 1) == 40  # 1 fold: K = 3 rows, N = 2 columns
    assert res.total.cycles == 209
    assert [c.name for c in res.layers] == ["lstm", "lstm.proj"]
    assert res.total.macs == 4 * 3 * 12 + 4 * 2 * 12 + 4 * 3 * 2


def test_combining_shrinks_each_part_of_a_gru_to_its_groups():
    doc = packed_doc(
        [gru_layer("g", 12, 12, groups_per_split=[4, 5], nnz=300, max_paths=3)], seq_len=6
    )
    inp, rec = from_packed_json(doc).gemms
    assert (inp.K, inp.k_dense, rec.K, rec.k_dense) == (4, 12, 5, 12)
    assert inp.weight_nnz + rec.weight_nnz == 300


@pytest.mark.parametrize("kind", ["gru", "lstmp"])
def test_dense_costs_are_scalesim_gemms_summed(kind):
    layers = (
        [gru_layer("l", 40, 24)]
        if kind == "gru"
        else [lstm_layer("l", 40, 24, proj_size=10), proj_layer("l.proj", 24, 10)]
    )
    wl = from_packed_json(packed_doc(layers, seq_len=7, batch=2))
    res = simulate(wl, HwConfig(rows=8, cols=16, dataflow="ws"))
    want = sum(g.repeats * ws_cycles(g.M, g.K, g.N, 8, 16) for g in wl)
    assert res.total.cycles == want


def test_a_gru_never_fuses_and_takes_a_recurrent_spike_rate():
    doc = packed_doc([gru_layer("g", 3, 3), lstm_layer("l", 3, 3, proj_size=2)], seq_len=4)
    parts = [g.part for g in from_packed_json(doc, fused=True)]
    assert parts == ["input", "recurrent", "fused"]  # n's two products must stay apart
    (fused,) = [g for g in from_packed_json(doc, fused=True) if g.part == "fused"]
    assert (fused.K, fused.N, fused.repeats) == (5, 12, 4)
    rates = {"g": 0.5, "g/recurrent": 0.25}
    inp, rec, *_ = from_packed_json(doc, spike_rates=rates).gemms
    assert (inp.spike_rate, rec.spike_rate) == (0.5, 0.25)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (dict(rows=12), "'rows' must be 3 * hidden_size = 9"),
        (dict(proj_size=2), "'proj_size' must be absent"),
    ],
)
def test_malformed_gru_entries_are_named(entry, message):
    layer = {**gru_layer("g", 3, 3), **entry}
    with pytest.raises(ValueError, match=re.escape(message)):
        from_packed_json(packed_doc([layer]))


def test_a_proj_size_must_match_the_recurrent_columns():
    layer = lstm_layer("l", 3, 3, proj_size=2)
    with pytest.raises(
        ValueError, match=re.escape("'cols' must be input_size + proj_size = 4, got 5")
    ):
        from_packed_json(packed_doc([{**layer, "proj_size": 1}]))
    with pytest.raises(ValueError, match="'proj_size' must be an integer in 1..hidden_size-1"):
        from_packed_json(packed_doc([{**layer, "proj_size": 3}]))
