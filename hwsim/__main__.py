"""CLI: ``python -m hwsim --packed PATH --array 128x128 --dataflow ws`` or ``--gemm M,N,K``.

Bad input prints one line (``error: ...``) to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import replace

from common.atomic import atomic_write_text
from hwsim.config import DATAFLOWS, PRESETS, HwConfig, parse_array, preset
from hwsim.simulate import simulate
from hwsim.workload import Workload, from_gemm_rows, from_packed_json


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage too: keep it to one line
        raise ValueError(message)


def _gemm_triple(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) <= 0:
        raise ValueError(
            f"--gemm must be M,N,K with positive integers (SCALE-Sim order); got {text!r}"
        )
    return values  # type: ignore[return-value]


def _spike_rate(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not sep or not name or not 0.0 <= rate <= 1.0:
        raise ValueError(f"--spike-rate must be LAYER=RATE with RATE in [0, 1]; got {text!r}")
    return name, rate


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m hwsim", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--packed", help="packed model JSON (packed.json)")
    src.add_argument("--gemm", action="append", help="M,N,K (SCALE-Sim order); repeatable")
    p.add_argument("--preset", help=f"array preset: {', '.join(sorted(PRESETS))}")
    p.add_argument("--array", help="ROWSxCOLS, e.g. 128x128 (overrides the preset)")
    p.add_argument("--dataflow", help=f"one of {', '.join(DATAFLOWS)}")
    p.add_argument("--clock-hz", type=float, help="clock frequency in Hz (latency, power)")
    p.add_argument("--sram-bytes", type=int, help="on-chip buffer size in bytes")
    p.add_argument("--dram-bytes-per-cycle", type=float, help="off-chip bandwidth per cycle")
    p.add_argument("--weight-bits", type=int, help="force the datapath weight width")
    p.add_argument("--act-bits", type=int, help="force the datapath activation width")
    p.add_argument(
        "--bit-serial",
        action="store_true",
        default=None,
        help="bit-serial MACs: cycles scale with the weight width",
    )
    p.add_argument(
        "--zero-skip",
        action="store_true",
        default=None,
        help="a zero spike costs no weight read (spiking inputs)",
    )
    p.add_argument("--seq-len", type=int, help="T (default: the packed file's workload block)")
    p.add_argument("--batch", type=int, help="B (default: the packed file's workload block)")
    p.add_argument("--fused", action="store_true", help="one [x;h] GEMM per LSTM step")
    p.add_argument("--spike-rate", action="append", default=[], help="LAYER=RATE; repeatable")
    p.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="default table"
    )
    p.add_argument("--level", choices=("layer", "gemm"), default="layer", help="rows of csv output")
    p.add_argument("--output", help="write the result here instead of stdout")
    p.add_argument("--topology-csv", help="also export the GEMM list as a SCALE-Sim topology CSV")
    return p


def make_config(args: argparse.Namespace) -> HwConfig:
    cfg = preset(args.preset) if args.preset else HwConfig()
    changes: dict[str, object] = {}
    if args.array:
        changes["rows"], changes["cols"] = parse_array(args.array)
    if args.dataflow is not None:
        if args.dataflow not in DATAFLOWS:
            raise ValueError(
                f"--dataflow must be one of {', '.join(DATAFLOWS)}; got {args.dataflow!r}"
            )
        changes["dataflow"] = args.dataflow
    for name in ("clock_hz", "sram_bytes", "dram_bytes_per_cycle", "weight_bits", "act_bits"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    for name in ("bit_serial", "zero_skip"):
        if getattr(args, name):
            changes[name] = True
    return replace(cfg, **changes) if changes else cfg


def make_workload(args: argparse.Namespace) -> Workload:
    if args.packed:
        rates = dict(_spike_rate(s) for s in args.spike_rate)
        return from_packed_json(
            args.packed, seq_len=args.seq_len, batch=args.batch, fused=args.fused, spike_rates=rates
        )
    if args.spike_rate or args.fused or args.seq_len or args.batch:
        raise ValueError("--spike-rate, --fused, --seq-len and --batch apply only with --packed")
    return from_gemm_rows([_gemm_triple(g) for g in args.gemm])


def _csv_text(records: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = make_config(args)
        workload = make_workload(args)
        result = simulate(workload, config)
        if args.topology_csv:
            workload.to_topology_csv(args.topology_csv)
        if args.format == "json":
            text = result.to_json()
        elif args.format == "csv":
            text = _csv_text(result.to_records(args.level))
        else:
            c = config
            text = (
                f"{c.name}: {c.rows}x{c.cols} {c.dataflow}, {c.clock_hz / 1e6:g} MHz, "
                f"weight bits {c.weight_bits or 'model'}, act bits {c.act_bits or 'model'}"
                f"{', bit-serial' if c.bit_serial else ''}{', zero-skip' if c.zero_skip else ''}\n"
                + result.to_markdown()
            )
        if args.output:  # atomically: a reader never sees half a table
            atomic_write_text(args.output, text + "\n")
        else:
            print(text)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
