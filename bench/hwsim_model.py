"""hwsim benchmark: simulate the whole ptbc model and a worked dense-vs-combined example.

Run: ``python -m bench.hwsim_model`` (or ``python -m bench``). Prints markdown for BENCHMARKS.md.

1. Speed: read a ptbc-sized packed.json (3 LSTM layers + decoder, T = 150, B = 1) and simulate it on
   a 128 x 128 ws array; median wall time over many runs, set against SCALE-Sim's cycle-by-cycle
   speed as quoted when hwsim was specified (20-50k simulated cycles per second; not measured
   here).
2. Worked example: ptbc's rnns.1 (4000 x 2000) dense vs column-combined at alpha = 3. The combined
   layer is grouped from a random 75%-pruned pattern (seeded) by the project's column-combining
   kernel when it is importable, else by the simple first-fit greedy below.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from hwsim.config import HwConfig
from hwsim.models import PTBC_SIZES, PTBC_VOCAB, linear_layer, lstm_layer, packed_doc, ptbc_dense
from hwsim.simulate import SimResult, simulate
from hwsim.workload import Gemm, Workload, from_packed_json

SEQ_LEN, BATCH = 150, 1
DENSITY = 0.25  # nonzeros left by magnitude pruning before combining
ALPHA, GAMMA = 3, 0.2
SEED = 0
SCALESIM_CYCLES_PER_S = (20e3, 50e3)  # quoted when hwsim was specified, not measured


def _first_fit_groups(nonzero: np.ndarray, alpha: int, budget: int) -> list[list[int]]:
    """Columns in order join the open group if it has room and stays within the conflict budget."""
    groups: list[list[int]] = []
    counts = np.zeros(nonzero.shape[0], np.int64)
    conflicts = 0
    for c in range(nonzero.shape[1]):
        col = nonzero[:, c]
        if not col.any():
            continue
        if groups and len(groups[-1]) < alpha:
            extra = int(np.count_nonzero(col & (counts > 0)))
            if conflicts + extra <= budget:
                groups[-1].append(c)
                counts += col
                conflicts += extra
                continue
        groups.append([c])
        counts = col.astype(np.int64)
        conflicts = 0
    return groups


def group_split(nonzero: np.ndarray) -> tuple[list[list[int]], str]:
    """Group one column block; returns (groups, which grouper ran)."""
    try:
        from compress.kernels.column_combine import group_columns
    except ImportError:
        group_columns = None
    if group_columns is not None:
        ptr, cols = group_columns(nonzero, ALPHA, GAMMA)
        return [cols[ptr[g] : ptr[g + 1]].tolist() for g in range(len(ptr) - 1)], "compress kernel"
    return _first_fit_groups(nonzero, ALPHA, int(GAMMA * nonzero.shape[0])), "first-fit greedy"


def kept_per_group(nonzero: np.ndarray, groups: list[list[int]]) -> int:
    """Nonzeros left after combining: each (row, group) cell keeps at most one weight."""
    return int(sum(np.count_nonzero(nonzero[:, g].any(axis=1)) for g in groups))


def combined_lstm(
    name: str, input_size: int, hidden: int, rng: np.random.Generator
) -> tuple[dict, str]:
    rows = 4 * hidden
    nonzero = rng.random((rows, input_size + hidden)) < DENSITY
    gps, nnz_split, used = [], [], ""
    for lo, hi in ((0, input_size), (input_size, input_size + hidden)):
        groups, used = group_split(nonzero[:, lo:hi])
        gps.append(len(groups))
        nnz_split.append(kept_per_group(nonzero[:, lo:hi], groups))
    layer = lstm_layer(name, input_size, hidden, gps, nnz=sum(nnz_split), max_paths=ALPHA)
    layer.update(
        gamma=GAMMA,
        nnz_before=int(nonzero.sum()),
        pruned_conflicts=int(nonzero.sum()) - sum(nnz_split),
        nnz_per_split=nnz_split,
    )
    return layer, used


def combined_ptbc(rng: np.random.Generator) -> tuple[dict, str]:
    layers, used = [], ""
    for i, (i_sz, h) in enumerate(PTBC_SIZES):
        layer, used = combined_lstm(f"rnns.{i}", i_sz, h, rng)
        layers.append(layer)
    dec = rng.random((PTBC_VOCAB, PTBC_SIZES[-1][1])) < DENSITY
    groups, _ = group_split(dec)
    layers.append(
        linear_layer(
            "decoder", dec.shape[1], PTBC_VOCAB, len(groups), kept_per_group(dec, groups), ALPHA
        )
    )
    return packed_doc(layers, model="ptbc-cc3", seq_len=SEQ_LEN, batch=BATCH), used


def time_simulation(
    path: Path, config: HwConfig, runs: int = 200
) -> tuple[float, float, SimResult]:
    """Median and min wall milliseconds of read-JSON + build workload + simulate."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = simulate(from_packed_json(path), config)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), result


def _resident(res: SimResult, layer: str | None) -> str:
    flags = [g.weights_resident for g in res.gemms if layer is None or g.gemm.layer == layer]
    return f"{sum(flags)}/{len(flags)}"


def _row(label: str, c, resident: str) -> str:
    return (
        f"| {label} | {c.cycles:,} | {c.bound_cycles:,} | {c.tiles:,} | {c.utilization:.4f} "
        f"| {c.macs:,} "
        f"| {c.dense_macs:,} | {c.weight_bytes / 1e6:.2f} | {c.sram_bytes / 1e6:.1f} "
        f"| {resident} | {c.compute_energy_pj / 1e6:,.0f} | {c.energy_pj / 1e6:,.0f} "
        f"| {c.latency_seconds * 1e3:.2f} |"
    )


def main() -> None:
    rng = np.random.default_rng(SEED)
    config = HwConfig(rows=128, cols=128, dataflow="ws")
    comb_doc, grouper = combined_ptbc(rng)
    docs = {"dense": ptbc_dense(SEQ_LEN, BATCH), f"combined alpha={ALPHA}": comb_doc}
    out = [
        "| ptbc model (T=150, B=1), 128x128 ws | GEMMs | simulated cycles | median ms | min ms "
        "| SCALE-Sim time at 20-50k cycles/s (quoted) and ratio |",
        "|---|---|---|---|---|---|",
    ]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, doc in docs.items():
            path = Path(tmp) / f"{label.split()[0]}.json"
            path.write_text(json.dumps(doc))
            med, best, res = time_simulation(path, config)
            results[label] = res
            lo, hi = (res.total.cycles / s for s in reversed(SCALESIM_CYCLES_PER_S))
            out.append(
                f"| {label} | {len(res.gemms)} | {res.total.cycles:,} | {med:.3f} | {best:.3f} "
                f"| {lo:,.0f}-{hi:,.0f} s ({lo / (med / 1e3):.1e}x-{hi / (med / 1e3):.1e}x) |"
            )
    step = Workload((Gemm("step", M=1, K=1000, N=4000),))
    times = []
    for _ in range(1000):
        t0 = time.perf_counter()
        cyc = simulate(step, config).total.cycles
        times.append((time.perf_counter() - t0) * 1e6)
    out.append(
        f"| one rnns.1 recurrent step, (M,N,K) = (1,4000,1000) | 1 | {cyc:,} "
        f"| {statistics.median(times) / 1e3:.3f} | {min(times) / 1e3:.3f} "
        f"| {cyc / SCALESIM_CYCLES_PER_S[1]:.1f}-{cyc / SCALESIM_CYCLES_PER_S[0]:.1f} s |"
    )
    info = next(x for x in comb_doc["layers"] if x["name"] == "rnns.1")
    out += [
        "",
        f"Worked example: ptbc rnns.1 (in 1000, H 1000: a 4000 x 2000 [W_ih | W_hh]), T=150, B=1, "
        f"on 128x128 ws at 700 MHz, 24 MiB SRAM, 32 DRAM bytes/cycle. Combined: a random "
        f"{DENSITY:.0%}-dense pattern (seed {SEED}) grouped at alpha={ALPHA}, gamma={GAMMA} by the "
        f"{grouper}: groups {info['groups_per_split']} of [1000, 1000] columns, nnz "
        f"{info['nnz_before']:,} -> {info['nnz']:,} after conflict pruning "
        f"(per split {info['nnz_per_split']}).",
        "",
        "| case | cycles | bound cycles | tiles | util | MACs | dense MACs | weights MB "
        "| SRAM MB | resident GEMMs | compute uJ | energy uJ | latency ms |",
        "|---" * 13 + "|",
    ]
    for bits in (None, 8):
        cfg = config if bits is None else config.with_(weight_bits=bits, act_bits=bits)
        tag = "fp32" if bits is None else "int8"
        for label, doc in docs.items():
            res = results[label] if bits is None else simulate(from_packed_json(doc), cfg)
            rnn1 = {c.name: c for c in res.layers}["rnns.1"]
            out.append(_row(f"{tag} rnns.1 {label}", rnn1, _resident(res, "rnns.1")))
            out.append(_row(f"{tag} whole model {label}", res.total, _resident(res, None)))
    print("\n".join(out))


if __name__ == "__main__":
    main()
