"""Energy from operation counts and bytes moved, using the config's ``EnergyTable``."""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.config import EnergyTable


@dataclass(frozen=True)
class Energy:
    compute_pj: float
    sram_pj: float
    dram_pj: float

    @property
    def total_pj(self) -> float:
        return self.compute_pj + self.sram_pj + self.dram_pj


def energy(
    table: EnergyTable,
    macs: float,
    accumulates: float,
    weight_bits: int,
    act_bits: int,
    sram_bytes: float,
    dram_bytes: float,
) -> Energy:
    """Energy of ``macs`` MACs and ``accumulates`` adds at these widths plus the memory traffic.

    Only useful (nonzero-weight) operations are charged: cells holding a zero are taken to be
    clock-gated. SRAM reads and writes cost the same per byte.
    """
    compute = macs * table.mac_pj(weight_bits, act_bits) + accumulates * table.add_pj(weight_bits)
    return Energy(
        compute_pj=compute,
        sram_pj=sram_bytes * table.sram_pj_per_byte,
        dram_pj=dram_bytes * table.dram_pj_per_byte,
    )
