"""Memory traffic: SRAM accesses per operand, weight residency, DRAM streaming, bandwidth bound.

Model (each choice is a knob in ``HwConfig`` or stated here):
- SRAM element counts follow SCALE-Sim's dataflow model (``hwsim.dataflow.sram_accesses``);
  ifmap elements are ``act_bits`` wide, weights ``weight_bits`` plus the multiplexer control bits of
  a column-combined cell (``ceil(log2(alpha))``), partial sums ``psum_bits``.
- Weights: walking the workload in order, a GEMM's packed weights stay resident in SRAM when they
  fit in what is left of ``sram_bytes`` (loaded once, before the inference unless
  ``count_weight_preload``); otherwise they are streamed from
  DRAM once per use (per repeat).
- Spiking inputs with ``zero_skip``: a zero spike fetches no weight, so weight reads are the
  expected event-driven fetches ``rate * M * nnz`` when that is fewer than the dataflow's reads; a
  matrix never read is never loaded.
- Activations stay on chip unless ``activations_on_chip`` is False, in which case each GEMM reads
  its inputs from DRAM and writes its outputs back once per use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.config import HwConfig
from hwsim.dataflow import sram_accesses
from hwsim.workload import Gemm, Workload


def control_bits(max_paths: int) -> int:
    """Multiplexer select bits per cell for a group of at most ``max_paths`` columns."""
    return math.ceil(math.log2(max_paths)) if max_paths > 1 else 0


def effective_bits(gemm: Gemm, config: HwConfig) -> tuple[int, int]:
    """(weight_bits, act_bits) the datapath runs this GEMM at; spikes are 1 bit."""
    wb = config.weight_bits if config.weight_bits is not None else gemm.weight_bits
    if gemm.spike_rate is not None:
        return wb, 1
    ab = config.act_bits if config.act_bits is not None else gemm.act_bits
    return wb, ab


def weight_bytes(gemm: Gemm, config: HwConfig) -> float:
    """Bytes of the packed weight matrix plus its control bits (K x N packed cells)."""
    wb, _ = effective_bits(gemm, config)
    return gemm.K * gemm.N * (wb + control_bits(gemm.max_paths)) / 8.0


def plan_residency(workload: Workload, config: HwConfig) -> tuple[bool, ...]:
    """Which GEMMs keep their weights in SRAM: first fit in workload order."""
    left = float(config.sram_bytes)
    plan = []
    for g in workload:
        need = weight_bytes(g, config)
        fits = need <= left
        if fits:
            left -= need
        plan.append(fits)
    return tuple(plan)


SRAM_FIELDS = ("ifmap_sram_read_bytes", "filter_sram_read_bytes", "ofmap_sram_write_bytes")
DRAM_FIELDS = ("ifmap_dram_read_bytes", "filter_dram_read_bytes", "ofmap_dram_write_bytes")
BYTE_FIELDS = SRAM_FIELDS + DRAM_FIELDS


class ByteTotals:
    """SRAM and DRAM byte totals of anything that knows its six per-operand byte counts
    (``BYTE_FIELDS``): a ``Cost`` carries them as fields, a ``Traffic`` in a mapping."""

    def byte_count(self, name: str) -> float:
        return getattr(self, name)

    @property
    def dram_bytes(self) -> float:
        return self._total(DRAM_FIELDS)

    @property
    def sram_bytes(self) -> float:
        return self._total(SRAM_FIELDS)

    def _total(self, names: tuple[str, str, str]) -> float:
        # a + b + c left to right: sum() of floats rounds differently from Python 3.12 on
        a, b, c = (self.byte_count(name) for name in names)
        return a + b + c


@dataclass(frozen=True)
class Traffic(ByteTotals):
    """Bytes moved by one GEMM over all its repeats: ``bytes`` maps each of ``BYTE_FIELDS``
    (the names of ``Cost``'s fields) to its count."""

    bytes: dict[str, float]
    weight_read_fraction: float

    def byte_count(self, name: str) -> float:
        return self.bytes[name]


def traffic(gemm: Gemm, config: HwConfig, resident: bool) -> Traffic:
    """SRAM and DRAM bytes of one GEMM (all repeats) under ``config``."""
    wb, ab = effective_bits(gemm, config)
    cell_bits = wb + control_bits(gemm.max_paths)
    ifmap_k = min(gemm.k_dense, gemm.K * gemm.max_paths)
    acc = sram_accesses(
        gemm.M, gemm.K, gemm.N, config.rows, config.cols, config.dataflow, ifmap_k=ifmap_k
    )
    frac = 1.0
    if gemm.spike_rate is not None and config.zero_skip:
        event_reads = gemm.spike_rate * gemm.M * gemm.weight_nnz
        frac = min(1.0, event_reads / acc.filter_reads)
    r = gemm.repeats
    wbytes = weight_bytes(gemm, config)
    if resident:
        filter_dram = wbytes if (frac > 0 and config.count_weight_preload) else 0.0
    else:
        filter_dram = wbytes * frac * r
    if config.activations_on_chip:
        ifmap_dram = ofmap_dram = 0.0
    else:
        out_bits = config.act_bits if config.act_bits is not None else gemm.act_bits
        ifmap_dram = gemm.M * ifmap_k * ab / 8.0 * r
        ofmap_dram = gemm.M * gemm.N * out_bits / 8.0 * r
    sram = (
        acc.ifmap_reads * ab / 8.0 * r,
        acc.filter_reads * frac * cell_bits / 8.0 * r,
        acc.ofmap_writes * config.psum_bits / 8.0 * r,
    )
    moved = dict(zip(BYTE_FIELDS, (*sram, ifmap_dram, filter_dram, ofmap_dram)))
    return Traffic(bytes=moved, weight_read_fraction=frac)


def bandwidth_bound_cycles(compute_cycles: int, dram_bytes: float, config: HwConfig) -> int:
    """max(compute, DRAM bytes / bytes per cycle): the cycles if DRAM cannot keep up."""
    return max(compute_cycles, math.ceil(dram_bytes / config.dram_bytes_per_cycle))
