"""Cycles of a run's packed model on several square arrays, simulated from its packed.json.

A run's hwsim.json holds its cost on one array (128x128 by default). There, for H = 256, one fold
of the array already holds every recurrent K once combining brings it to 128 or fewer, so every
alpha above 2 gives the same cycles: what combining buys shows on arrays smaller than the
matrices. hwsim is numpy only and reads packed.json alone, so a report costs any run again on
other arrays without a checkpoint or torch.
"""

from __future__ import annotations

import math
from pathlib import Path

ARRAYS: tuple[str, ...] = ("16x16", "32x32", "64x64", "128x128")


def cycles_column(array: str) -> str:
    """The frame column of the cycles on `array`, e.g. "cycles_32x32"."""
    return f"cycles_{array}"


CYCLES_COLUMNS: tuple[str, ...] = tuple(cycles_column(a) for a in ARRAYS)


def cycles_on_arrays(run_dir: Path, dataflow: str = "ws") -> dict[str, float]:
    """{"cycles_<RxC>": cycles per workload} on each of ARRAYS for the packed.json in `run_dir`,
    on hwsim's defaults beside the array and dataflow (as compress.run simulates); NaN on every
    array when the run has no packed.json. A malformed packed.json raises a ValueError naming it."""
    path = Path(run_dir) / "packed.json"
    if not path.is_file():
        return dict.fromkeys(CYCLES_COLUMNS, math.nan)
    from hwsim.config import HwConfig, parse_array
    from hwsim.simulate import simulate
    from hwsim.workload import from_packed_json

    workload = from_packed_json(path)
    out = {}
    for array in ARRAYS:
        rows, cols = parse_array(array)
        hw = HwConfig(rows=rows, cols=cols, dataflow=dataflow)
        out[cycles_column(array)] = float(simulate(workload, hw).total.cycles)
    return out


def cost_on(run_dir: Path, array: str, dataflow: str) -> tuple[float, float]:
    """(cycles, energy in pJ) per workload of the packed.json in `run_dir` on `array` with
    `dataflow`, as compress.run simulates (hwsim defaults beside these); NaNs when the run has
    no packed.json or the array is not RxC."""
    path = Path(run_dir) / "packed.json"
    if not path.is_file():
        return math.nan, math.nan
    from hwsim.config import HwConfig, parse_array
    from hwsim.simulate import simulate
    from hwsim.workload import from_packed_json

    try:
        rows, cols = parse_array(array)
    except ValueError:
        return math.nan, math.nan
    total = simulate(from_packed_json(path), HwConfig(rows=rows, cols=cols, dataflow=dataflow))
    return float(total.total.cycles), float(total.total.energy_pj)
