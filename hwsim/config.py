"""Hardware configuration: array shape, dataflow, clock, memory, precision and the energy table.

Everything a cost depends on lives here in frozen dataclasses, so a simulation is a pure function
of (workload, config) and a config can be stored beside a result (``to_dict``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace

from common.packed import FLOAT_BITS  # 32 bits means IEEE float, as in the packed format

DATAFLOWS = ("ws", "os", "is")


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation and per byte moved, 45 nm (Horowitz, ISSCC 2014).

    Integer MAC energy scales with the product of the operand widths (a multiplier's area and
    switching grow with both widths), so an 8x8-bit MAC costs ``int8_mac_pj`` and a 4x8-bit one
    half of it; an integer add scales linearly with its width. A bit-serial MAC (``act_bits`` adds of
    a ``weight_bits`` word) lands within 5% of the same figure at 8 bits (8 * 0.03 = 0.24 vs 0.23),
    so one table serves both datapaths. Any float operand makes the MAC a float MAC.
    """

    fp32_mac_pj: float = 4.6  # 3.7 pJ fmul + 0.9 pJ fadd
    fp32_add_pj: float = 0.9
    int8_mac_pj: float = 0.23  # 0.2 pJ mul + 0.03 pJ add
    int8_add_pj: float = 0.03
    # Horowitz: ~100 pJ per 64-bit access of a 1 MB SRAM; 1.3-2.6 nJ per 64-bit DRAM access.
    sram_pj_per_byte: float = 12.5
    dram_pj_per_byte: float = 250.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"EnergyTable.{name} must be a finite number >= 0, got {value!r}")

    def mac_pj(self, weight_bits: int, act_bits: int) -> float:
        """Energy of one multiply-accumulate at these operand widths."""
        if weight_bits >= FLOAT_BITS or act_bits >= FLOAT_BITS:
            return self.fp32_mac_pj
        return self.int8_mac_pj * (weight_bits * act_bits) / 64.0

    def add_pj(self, bits: int) -> float:
        """Energy of one accumulate (adding a weight of this width), as a spike triggers."""
        if bits >= FLOAT_BITS:
            return self.fp32_add_pj
        return self.int8_add_pj * bits / 8.0


def _check_positive_int(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}.{name} must be a positive integer, got {value!r}")


def _check_bits(owner: str, name: str, value: object, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= FLOAT_BITS:
        allowed = "None or " if allow_none else ""
        raise ValueError(
            f"{owner}.{name} must be {allowed}an integer in 1..{FLOAT_BITS} (32 = float), "
            f"got {value!r}"
        )


def check_dataflow(dataflow: object) -> str:
    """Return the dataflow if it is one of ws/os/is, else raise a ValueError naming them."""
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}; got {dataflow!r}")
    return dataflow  # type: ignore[return-value]


@dataclass(frozen=True)
class HwConfig:
    """A systolic array and its memory system.

    ``weight_bits``/``act_bits`` set to an integer force the datapath width (the model is taken to be
    quantized to it, as a TPU runs int8); ``None`` uses each layer's own widths from the workload.
    ``sram_bytes`` is the on-chip buffer that may hold weights; activations are assumed to stay on
    chip unless ``activations_on_chip`` is False. Resident weights are on chip before an inference
    starts (steady state) unless ``count_weight_preload``, which charges their one DRAM load to
    the inference. ``psum_bits`` is the width of partial sums written
    back to SRAM between K folds.
    """

    rows: int = 128
    cols: int = 128
    dataflow: str = "ws"
    clock_hz: float = 700e6
    sram_bytes: int = 24 * 2**20
    dram_bytes_per_cycle: float = 32.0
    weight_bits: int | None = None
    act_bits: int | None = None
    psum_bits: int = 32
    bit_serial: bool = False
    zero_skip: bool = False
    activations_on_chip: bool = True
    count_weight_preload: bool = False
    name: str = "custom"
    energy: EnergyTable = field(default_factory=EnergyTable)

    def __post_init__(self) -> None:
        _check_positive_int("HwConfig", "rows", self.rows)
        _check_positive_int("HwConfig", "cols", self.cols)
        check_dataflow(self.dataflow)
        for name in ("clock_hz", "dram_bytes_per_cycle"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"HwConfig.{name} must be a finite number > 0, got {value!r}")
        sram = self.sram_bytes
        if isinstance(sram, bool) or not isinstance(sram, int) or sram < 0:
            raise ValueError(f"HwConfig.sram_bytes must be an integer >= 0, got {sram!r}")
        _check_bits("HwConfig", "weight_bits", self.weight_bits, allow_none=True)
        _check_bits("HwConfig", "act_bits", self.act_bits, allow_none=True)
        _check_bits("HwConfig", "psum_bits", self.psum_bits, allow_none=False)
        if not isinstance(self.energy, EnergyTable):
            raise ValueError(f"HwConfig.energy must be an EnergyTable, got {type(self.energy)}")

    def with_(self, **changes: object) -> HwConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def _int8_ws(
    name: str, size: int, clock_hz: float, sram_bytes: int, dram_bytes_per_cycle: float, **more
) -> HwConfig:
    """A square weight-stationary array of 8-bit MACs, as every preset is."""
    return HwConfig(
        name=name,
        rows=size,
        cols=size,
        dataflow="ws",
        clock_hz=clock_hz,
        sram_bytes=sram_bytes,
        dram_bytes_per_cycle=dram_bytes_per_cycle,
        weight_bits=8,
        act_bits=8,
        **more,
    )


PRESETS: dict[str, HwConfig] = {
    p.name: p
    for p in (
        # The TPU v1 (Jouppi et al., ISCA 2017): 256 x 256 8-bit MACs at 700 MHz, 24 MiB unified
        # buffer, weights from 30 GB/s DDR3 (about 43 bytes per cycle).
        _int8_ws("tpu-v1", 256, 700e6, 24 * 2**20, 30e9 / 700e6),
        # A small edge accelerator: 32 x 32 8-bit, 512 KiB buffer, LPDDR at ~8 bytes per cycle.
        _int8_ws("edge", 32, 500e6, 512 * 2**10, 8.0),
        # The column-combining paper's 64 x 64 tile (Kung, McDanel, Zhang, ASPLOS 2019) with
        # bit-serial 8-bit MACs; clock and buffer sizes are our assumption, edit them here.
        _int8_ws("cc-64", 64, 500e6, 2 * 2**20, 16.0, bit_serial=True),
    )
}


def preset(name: str) -> HwConfig:
    """The named preset; ValueError listing the known ones otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


_ARRAY_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_array(text: str) -> tuple[int, int]:
    """Parse "RxC" (rows x cols) into (rows, cols), both positive."""
    match = _ARRAY_RE.match(text) if isinstance(text, str) else None
    rows, cols = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if rows <= 0 or cols <= 0:
        raise ValueError(
            f"array must be ROWSxCOLS with positive integers, e.g. 128x128; got {text!r}"
        )
    return rows, cols
