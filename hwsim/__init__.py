"""Systolic-array cost simulator. Imports no torch.

    from hwsim import from_packed_json, preset, simulate
    result = simulate(from_packed_json("runs/ptbc/x/packed.json"), preset("tpu-v1"))

``hwsim.simulate`` is the function; its module is importable as ``hwsim.simulate`` too.
"""

from hwsim.config import PRESETS, EnergyTable, HwConfig, parse_array, preset
from hwsim.dataflow import gemm_cycles
from hwsim.simulate import Cost, GemmCost, SimResult, simulate
from hwsim.workload import Gemm, Workload, from_gemm_rows, from_packed_json

__all__ = [
    "PRESETS",
    "Cost",
    "EnergyTable",
    "Gemm",
    "GemmCost",
    "HwConfig",
    "SimResult",
    "Workload",
    "from_gemm_rows",
    "from_packed_json",
    "gemm_cycles",
    "parse_array",
    "preset",
    "simulate",
]
