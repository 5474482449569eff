"""Costs: utilization, precision, spikes, memory residency, energy, output formats."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import PRESETS, EnergyTable, HwConfig, parse_array, preset
from hwsim.dataflow import gemm_cycles
from hwsim.models import lstm_layer, packed_doc, ptbc_dense
from hwsim.simulate import simulate
from hwsim.workload import Gemm, Workload, from_packed_json


def one(gemm: Gemm, **cfg):
    return simulate(Workload((gemm,)), HwConfig(**cfg)).gemms[0]


@st.composite
def gemm_and_config(draw):
    m, k, n = (draw(st.integers(1, 600)) for _ in range(3))
    nnz = draw(st.integers(0, k * n))
    spike = draw(st.one_of(st.none(), st.floats(0, 1)))
    gemm = Gemm(
        "g",
        M=m,
        K=k,
        N=n,
        repeats=draw(st.integers(1, 5)),
        nnz=nnz,
        dense_k=k * draw(st.integers(1, 3)),
        max_paths=draw(st.integers(1, 4)),
        weight_bits=draw(st.sampled_from([2, 4, 8, 16, 32])),
        act_bits=draw(st.sampled_from([1, 4, 8, 32])),
        spike_rate=spike,
    )
    cfg = HwConfig(
        rows=draw(st.integers(1, 256)),
        cols=draw(st.integers(1, 256)),
        dataflow=draw(st.sampled_from(["ws", "os", "is"])),
        bit_serial=draw(st.booleans()),
        zero_skip=draw(st.booleans()),
        sram_bytes=draw(st.integers(0, 2**22)),
    )
    return gemm, cfg


@settings(max_examples=300, deadline=None)
@given(gc=gemm_and_config())
def test_utilization_is_between_zero_and_one_and_bound_covers_compute(gc):
    gemm, cfg = gc
    res = simulate(Workload((gemm,)), cfg)
    c = res.total
    assert 0.0 <= c.utilization <= 1.0
    assert c.bound_cycles >= c.cycles
    assert c.macs <= c.array_macs <= c.dense_macs
    assert c.energy_pj >= 0


def test_dense_utilization_of_a_perfectly_tiled_large_gemm_approaches_one():
    c = simulate(Workload((Gemm("g", M=100_000, K=128, N=128),)), HwConfig()).total
    assert 0.99 < c.utilization <= 1.0


def test_combined_utilization_counts_real_nonzeros_not_packed_cells():
    g = Gemm("g", M=1000, K=128, N=128, dense_k=384, nnz=128 * 128 // 2, max_paths=3)
    gc = one(g)
    assert gc.cost.macs == 1000 * 128 * 64
    assert gc.cost.dense_macs == 1000 * 384 * 128
    assert gc.cost.utilization == pytest.approx(gc.cost.macs / (gc.cost.cycles * 128 * 128))


def test_bit_serial_multiplies_stream_length_by_activation_bits():
    g = Gemm("g", M=150, K=1000, N=4000, weight_bits=8, act_bits=8)
    par = one(g)
    ser = one(g, bit_serial=True)
    assert ser.cost.cycles == gemm_cycles(150 * 8, 1000, 4000, 128, 128, "ws")
    assert ser.cost.tiles == par.cost.tiles
    assert ser.cost.utilization == pytest.approx(
        g.M * g.K * g.N * 8 / (ser.cost.cycles * 128 * 128)
    )


def test_memory_traffic_scales_with_weight_bits_and_counts_control_bits():
    base = dict(M=4, K=300, N=200)
    b32 = one(Gemm("g", **base, weight_bits=32))
    b8 = one(Gemm("g", **base, weight_bits=8))
    assert b8.cost.filter_sram_read_bytes * 4 == b32.cost.filter_sram_read_bytes
    cc = one(Gemm("g", **base, weight_bits=8, max_paths=3, dense_k=900))
    assert cc.control_bits == 2  # ceil(log2(3)) select bits per cell
    assert cc.cost.weight_bytes == 300 * 200 * (8 + 2) / 8


def test_config_bits_override_the_model_precision():
    g = Gemm("g", M=4, K=30, N=20)  # float model
    c = one(g, weight_bits=8, act_bits=8)
    assert (c.weight_bits, c.act_bits) == (8, 8)
    assert c.cost.compute_energy_pj == pytest.approx(4 * 30 * 20 * 0.23)
    assert one(g).cost.compute_energy_pj == pytest.approx(4 * 30 * 20 * 4.6)


def test_spiking_input_turns_macs_into_accumulates():
    g = Gemm("g", M=150, K=200, N=4000, nnz=200 * 4000 // 2, spike_rate=0.1)
    c = one(g).cost
    assert c.macs == 0
    assert c.accumulates == pytest.approx(0.1 * 150 * g.weight_nnz)  # spikes * fan-out
    assert c.compute_energy_pj == pytest.approx(c.accumulates * 0.9)


def test_zero_spike_rate_with_zero_skip_reads_no_weights():
    g = Gemm("g", M=150, K=200, N=4000, repeats=3, spike_rate=0.0)
    for sram in (0, 2**30):  # streamed from DRAM and resident
        skip = one(g, zero_skip=True, sram_bytes=sram, count_weight_preload=True).cost
        assert skip.filter_sram_read_bytes == 0 and skip.filter_dram_read_bytes == 0
        noskip = one(g, zero_skip=False, sram_bytes=sram, count_weight_preload=True).cost
        assert noskip.filter_sram_read_bytes > 0 and noskip.filter_dram_read_bytes > 0


def test_zero_skip_reads_the_cheaper_of_event_driven_and_dataflow_weight_fetches():
    g = Gemm("g", M=1, K=1000, N=1000, spike_rate=0.25)
    c = one(g, zero_skip=True)
    assert c.weight_read_fraction == pytest.approx(0.25)  # 0.25 * 1 * nnz of K*N reads
    big = Gemm("g", M=1000, K=1000, N=1000, spike_rate=0.25)
    assert one(big, zero_skip=True).weight_read_fraction == 1.0  # reuse beats refetching


def test_weights_stream_from_dram_once_per_use_when_they_do_not_fit():
    g = Gemm("g", M=1, K=1000, N=4000, repeats=150, weight_bits=8)
    wbytes = 1000 * 4000
    streamed = one(g, sram_bytes=wbytes - 1, dram_bytes_per_cycle=32.0)
    assert not streamed.weights_resident
    assert streamed.cost.filter_dram_read_bytes == wbytes * 150
    assert streamed.cost.bound_cycles == max(streamed.cost.cycles, math.ceil(wbytes * 150 / 32))
    resident = one(g, sram_bytes=wbytes)
    assert resident.weights_resident and resident.cost.filter_dram_read_bytes == 0
    preload = one(g, sram_bytes=wbytes, count_weight_preload=True)
    assert preload.cost.filter_dram_read_bytes == wbytes


def test_residency_is_first_fit_in_workload_order():
    a = Gemm("a", M=1, K=100, N=100, weight_bits=8)
    b = Gemm("b", M=1, K=200, N=100, weight_bits=8)
    c = Gemm("c", M=1, K=50, N=100, weight_bits=8)
    res = simulate(Workload((a, b, c)), HwConfig(sram_bytes=10_000 + 5_000))
    assert [g.weights_resident for g in res.gemms] == [True, False, True]


def test_activations_off_chip_adds_dram_reads_and_writes():
    g = Gemm("g", M=10, K=100, N=50, act_bits=8)
    c = one(g, activations_on_chip=False).cost
    assert c.ifmap_dram_read_bytes == 10 * 100 and c.ofmap_dram_write_bytes == 10 * 50


def test_energy_table_values_and_scaling():
    e = EnergyTable()
    assert (e.mac_pj(32, 32), e.add_pj(32), e.mac_pj(8, 8), e.add_pj(8)) == (4.6, 0.9, 0.23, 0.03)
    assert e.mac_pj(4, 8) == pytest.approx(0.115)
    assert e.mac_pj(8, 32) == 4.6  # a float operand makes it a float MAC
    with pytest.raises(ValueError, match="sram_pj_per_byte"):
        EnergyTable(sram_pj_per_byte=-1)


def test_layer_and_total_rows_add_up_and_latency_uses_the_clock():
    res = simulate(from_packed_json(ptbc_dense()), preset("tpu-v1"))
    assert [c.name for c in res.layers] == ["rnns.0", "rnns.1", "rnns.2", "decoder"]
    assert res.total.cycles == sum(c.cycles for c in res.layers)
    assert res.total.energy_pj == pytest.approx(sum(c.energy_pj for c in res.layers))
    assert res.total.latency_seconds == pytest.approx(res.total.bound_cycles / 700e6)


def test_results_serialize_to_json_and_pandas_rows(tmp_path):
    import pandas as pd

    res = simulate(from_packed_json(ptbc_dense()), HwConfig())
    path = tmp_path / "hwsim.json"
    res.to_json(path)
    doc = json.loads(path.read_text())
    assert doc["total"]["cycles"] == res.total.cycles and doc["config"]["rows"] == 128
    df = pd.DataFrame(res.to_records())
    assert list(df["name"]) == ["rnns.0", "rnns.1", "rnns.2", "decoder", "total"]
    gdf = pd.DataFrame(res.to_records("gemm"))
    assert gdf["cycles"].sum() == res.total.cycles
    assert "| total |" in res.to_markdown()


def test_presets_and_array_parsing():
    assert (PRESETS["tpu-v1"].rows, PRESETS["tpu-v1"].clock_hz) == (256, 700e6)
    assert (preset("edge").rows, preset("cc-64").cols) == (32, 64)
    assert parse_array(" 128x64 ") == (128, 64)
    with pytest.raises(ValueError, match="unknown preset 'tpu'; allowed: cc-64, edge, tpu-v1"):
        preset("tpu")
    for bad in ("128", "0x4", "ax4", "4x-4"):
        with pytest.raises(ValueError, match="ROWSxCOLS"):
            parse_array(bad)
    with pytest.raises(ValueError, match="dataflow must be one of ws, os, is"):
        HwConfig(dataflow="rs")
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        HwConfig(rows=0)


def test_combined_ptbc_layer_is_cheaper_than_dense_at_alpha_three():
    dense = packed_doc([lstm_layer("rnns.1", 1000, 1000)], seq_len=150)
    comb = packed_doc(
        [lstm_layer("rnns.1", 1000, 1000, [340, 345], nnz=4000 * 685 * 9 // 10, max_paths=3)],
        seq_len=150,
    )
    d = simulate(from_packed_json(dense), HwConfig()).total
    c = simulate(from_packed_json(comb), HwConfig()).total
    assert c.cycles < d.cycles / 2.5 and c.tiles < d.tiles
    assert c.dense_macs == d.dense_macs and c.macs < d.macs
