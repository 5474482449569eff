"""``simulate(workload, config)``: per-GEMM, per-layer and total costs as plain dataclasses.

A pure function of python data: closed-form cycle counts (``hwsim.dataflow``), traffic
(``hwsim.memory``) and energy (``hwsim.energy``). Units are in the field names.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from common.atomic import atomic_write_text
from hwsim.config import HwConfig
from hwsim.dataflow import mapping
from hwsim.energy import energy
from hwsim.memory import (
    ByteTotals,
    bandwidth_bound_cycles,
    control_bits,
    effective_bits,
    plan_residency,
    traffic,
    weight_bytes,
)
from hwsim.workload import Gemm, Workload


@dataclass(frozen=True)
class Cost(ByteTotals):
    """Additive costs of a GEMM, a layer or a whole model.

    ``cycles`` is compute time on the array; ``bound_cycles`` = max(compute, DRAM bytes / DRAM bytes
    per cycle), summed per GEMM; latency is ``bound_cycles`` at the clock. ``macs`` counts real
    nonzero-weight multiply-accumulates, ``dense_macs`` the dense-equivalent count of the original
    matrix, ``array_macs`` the cell operations the packed array issues (M * K * N, zeros included).
    ``accumulates`` are spike-driven adds (expected count, so fractional). ``utilization`` =
    (macs + accumulates) * cycles per MAC / (cycles * rows * cols), where a bit-serial MAC holds a
    cell for ``act_bits`` cycles.
    """

    name: str
    cycles: int
    bound_cycles: int
    tiles: int
    macs: int
    dense_macs: int
    array_macs: int
    accumulates: float
    utilization: float
    busy_cell_cycles: float
    ifmap_sram_read_bytes: float
    filter_sram_read_bytes: float
    ofmap_sram_write_bytes: float
    ifmap_dram_read_bytes: float
    filter_dram_read_bytes: float
    ofmap_dram_write_bytes: float
    weight_bytes: float
    compute_energy_pj: float
    sram_energy_pj: float
    dram_energy_pj: float
    energy_pj: float
    latency_seconds: float


_SUMMED = tuple(
    f.name for f in fields(Cost) if f.name not in ("name", "utilization", "latency_seconds")
)


@dataclass(frozen=True)
class GemmCost:
    """One GEMM's mapping and its costs (all repeats)."""

    gemm: Gemm
    cost: Cost
    weight_bits: int
    act_bits: int
    control_bits: int
    cycles_per_repeat: int
    folds_per_repeat: int
    stream_scale: int
    weights_resident: bool
    weight_read_fraction: float

    def to_record(self) -> dict:
        rec = {"layer": self.gemm.layer, "part": self.gemm.part}
        rec.update({k: v for k, v in asdict(self.cost).items()})
        rec.update(
            M=self.gemm.M,
            K=self.gemm.K,
            N=self.gemm.N,
            repeats=self.gemm.repeats,
            dense_k=self.gemm.k_dense,
            nnz=self.gemm.weight_nnz,
            max_paths=self.gemm.max_paths,
            spike_rate=self.gemm.spike_rate,
            weight_bits=self.weight_bits,
            act_bits=self.act_bits,
            control_bits=self.control_bits,
            cycles_per_repeat=self.cycles_per_repeat,
            folds_per_repeat=self.folds_per_repeat,
            stream_scale=self.stream_scale,
            weights_resident=self.weights_resident,
            weight_read_fraction=self.weight_read_fraction,
        )
        return rec


@dataclass(frozen=True)
class SimResult:
    """Everything ``simulate`` returns: the config, per-GEMM, per-layer and total costs."""

    config: HwConfig
    workload_name: str
    gemms: tuple[GemmCost, ...]
    layers: tuple[Cost, ...]
    total: Cost

    def to_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "workload": self.workload_name,
            "gemms": [g.to_record() for g in self.gemms],
            "layers": [asdict(c) for c in self.layers],
            "total": asdict(self.total),
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_records(self, level: str = "layer") -> list[dict]:
        """Rows for ``pandas.DataFrame``: per layer plus a ``total`` row, or per GEMM."""
        if level == "gemm":
            return [g.to_record() for g in self.gemms]
        if level == "layer":
            return [asdict(c) for c in (*self.layers, self.total)]
        raise ValueError(f"level must be one of layer, gemm; got {level!r}")

    def to_markdown(self) -> str:
        """A compact per-layer table with the total as its last row."""
        head = (
            "| layer | cycles | bound cycles | util | tiles | MACs | dense MACs | ACs "
            "| SRAM MB | DRAM MB | energy uJ | latency ms |"
        )
        lines = [head, "|" + "---|" * 12]
        for c in (*self.layers, self.total):
            lines.append(
                f"| {c.name} | {c.cycles:,} | {c.bound_cycles:,} | {c.utilization:.3f} "
                f"| {c.tiles:,} | {c.macs:,} | {c.dense_macs:,} | {c.accumulates:,.0f} "
                f"| {c.sram_bytes / 1e6:.2f} | {c.dram_bytes / 1e6:.2f} "
                f"| {c.energy_pj / 1e6:.2f} | {c.latency_seconds * 1e3:.3f} |"
            )
        return "\n".join(lines)


def _aggregate(name: str, costs: list[Cost], config: HwConfig) -> Cost:
    sums = {k: sum(getattr(c, k) for c in costs) for k in _SUMMED}
    cells = config.rows * config.cols
    util = sums["busy_cell_cycles"] / (sums["cycles"] * cells) if sums["cycles"] else 0.0
    return Cost(
        name=name,
        utilization=util,
        latency_seconds=sums["bound_cycles"] / config.clock_hz,
        **sums,
    )


def simulate_gemm(gemm: Gemm, config: HwConfig, resident: bool = True) -> GemmCost:
    """Costs of one GEMM (all its repeats) with its weights resident in SRAM or streamed."""
    wb, ab = effective_bits(gemm, config)
    serial = ab if config.bit_serial else 1
    mp = mapping(gemm.M, gemm.K, gemm.N, config.rows, config.cols, config.dataflow, serial)
    r = gemm.repeats
    cycles = mp.cycles * r
    nnz = gemm.weight_nnz
    if gemm.spike_rate is None:
        macs, accs = gemm.M * nnz * r, 0.0
    else:
        macs, accs = 0, gemm.spike_rate * gemm.M * nnz * r
    tr = traffic(gemm, config, resident)
    bound = bandwidth_bound_cycles(cycles, tr.dram_bytes, config)
    en = energy(config.energy, macs, accs, wb, ab, tr.sram_bytes, tr.dram_bytes)
    busy = (macs + accs) * serial
    cost = Cost(
        name=gemm.name,
        cycles=cycles,
        bound_cycles=bound,
        tiles=mp.folds * r,
        macs=macs,
        dense_macs=gemm.M * gemm.k_dense * gemm.N * r,
        array_macs=gemm.M * gemm.K * gemm.N * r,
        accumulates=accs,
        utilization=busy / (cycles * config.rows * config.cols),
        busy_cell_cycles=busy,
        **tr.bytes,
        weight_bytes=weight_bytes(gemm, config),
        compute_energy_pj=en.compute_pj,
        sram_energy_pj=en.sram_pj,
        dram_energy_pj=en.dram_pj,
        energy_pj=en.total_pj,
        latency_seconds=bound / config.clock_hz,
    )
    return GemmCost(
        gemm=gemm,
        cost=cost,
        weight_bits=wb,
        act_bits=ab,
        control_bits=control_bits(gemm.max_paths),
        cycles_per_repeat=mp.cycles,
        folds_per_repeat=mp.folds,
        stream_scale=serial,
        weights_resident=resident,
        weight_read_fraction=tr.weight_read_fraction,
    )


def simulate(workload: Workload, config: HwConfig) -> SimResult:
    """Simulate a workload on an array: per-GEMM, per-layer (in first-seen order) and total costs."""
    if not isinstance(workload, Workload):
        raise ValueError(
            f"workload must be a hwsim.workload.Workload, got {type(workload).__name__}"
        )
    if not isinstance(config, HwConfig):
        raise ValueError(f"config must be a hwsim.config.HwConfig, got {type(config).__name__}")
    if len(workload) == 0:
        raise ValueError("workload has no GEMMs")
    plan = plan_residency(workload, config)
    gcosts = tuple(simulate_gemm(g, config, res) for g, res in zip(workload, plan))
    by_layer: dict[str, list[Cost]] = {}
    for gc in gcosts:
        by_layer.setdefault(gc.gemm.layer or gc.gemm.name, []).append(gc.cost)
    layers = tuple(_aggregate(name, costs, config) for name, costs in by_layer.items())
    total = _aggregate("total", [gc.cost for gc in gcosts], config)
    return SimResult(
        config=config, workload_name=workload.name, gemms=gcosts, layers=layers, total=total
    )
