"""Made run records: realistic run directories without training, for tests and for trying reports.

`write_run` fabricates one run directory exactly as `python -m compress.run` lays it out
(config.json, metrics.json, hwsim.json, packed.json + packed.npz) from small random weight
matrices that are really pruned and column-combined (a plain greedy pass, here only to make the
records self-consistent: groups, nonzeros and packing efficiency agree with the packed arrays).
Quality and hardware figures follow simple smooth formulas of the settings; they are made up and
say nothing about real models.

    python -m reports.synthetic OUT_DIR     # a small ptbc sweep to try `python -m reports` on
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_json

# model -> (quality metric, higher is better, dense quality, sensitivity to pruning)
_QUALITY = {
    "ptbc": ("bpc", False, 1.38, 0.9),
    "ptbw": ("ppl", False, 92.0, 160.0),
    "nmt": ("bleu", True, 21.5, -18.0),
    "names": ("accuracy", True, 0.82, -0.35),
}
_SPIKING = {"nmt"}


def run_id_for(
    kind: str, *, preset: str, seed: int, alpha: int = 1, gamma: float = 0.0, bits: int = 32
) -> str:
    """The run-ids compress.run and compress.sweep use: "dense-<preset>-s<seed>" and
    "a<alpha>-g<gamma>-b<bits>-<preset>-s<seed>"."""
    if kind == "dense":
        return f"dense-{preset}-s{seed}"
    return f"a{alpha}-g{gamma:g}-b{bits}-{preset}-s{seed}"


def greedy_combine(
    mask: np.ndarray, alpha: int, gamma: float, col_splits: Sequence[int]
) -> list[list[int]]:
    """Column groups: each nonzero column joins the first open group of its split that stays within
    `alpha` columns and `floor(gamma * rows)` conflicts, else opens a new one."""
    rows = mask.shape[0]
    budget = math.floor(gamma * rows)
    groups: list[list[int]] = []
    for lo, hi in zip(col_splits[:-1], col_splits[1:]):
        open_groups: list[tuple[list[int], np.ndarray]] = []
        for c in range(lo, hi):
            col = mask[:, c].astype(np.int64)
            if not col.any():
                continue
            for cols, counts in open_groups:
                if len(cols) < alpha and np.maximum(counts + col - 1, 0).sum() <= budget:
                    cols.append(c)
                    counts += col
                    break
            else:
                open_groups.append(([c], col.copy()))
        groups.extend(cols for cols, _ in open_groups)
    return groups


def _pack(weight: np.ndarray, groups: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Control and values: per (row, group) the largest-magnitude nonzero (ties: lowest column)."""
    rows = weight.shape[0]
    control = np.full((rows, len(groups)), -1, dtype=np.int32)
    values = np.zeros((rows, len(groups)), dtype=np.float32)
    for g, cols in enumerate(groups):
        block = np.abs(weight[:, cols])
        best = np.argmax(block, axis=1)  # argmax returns the first (lowest column) on ties
        has = block[np.arange(rows), best] > 0
        control[has, g] = np.asarray(cols)[best[has]]
        values[has, g] = weight[has, np.asarray(cols)[best[has]]]
    return control, values


def _layer_shapes(model: str, hidden: int) -> list[dict]:
    emb, vocab = max(8, hidden // 2), max(16, hidden)
    if model in _SPIKING:
        return [
            {"name": "encoder.0", "kind": "lstm", "input_size": emb, "hidden_size": hidden},
            {"name": "decoder.0", "kind": "lstm", "input_size": emb, "hidden_size": hidden},
            {"name": "generator", "kind": "linear", "rows": vocab, "cols": hidden},
        ]
    return [
        {"name": "rnns.0", "kind": "lstm", "input_size": emb, "hidden_size": hidden},
        {"name": "rnns.1", "kind": "lstm", "input_size": hidden, "hidden_size": hidden},
        {"name": "decoder", "kind": "linear", "rows": vocab, "cols": hidden},
    ]


def write_run(
    run_dir: str | os.PathLike,
    *,
    model: str = "ptbc",
    preset: str = "cpu",
    seed: int = 0,
    kind: str = "compressed",
    alpha: int = 3,
    gamma: float = 1.75,
    bits: int = 32,
    sparsity: float = 0.0,
    status: str = "finished",
    error: str | None = None,
    hidden: int = 24,
    packed: bool = True,
    array: tuple[int, int] = (16, 16),
) -> Path:
    """Fabricate one run directory; returns it. `status="failed"` writes config and a failed
    metrics.json only."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if kind != "compressed":  # dense or small_dense: a float model packed at alpha 1
        alpha, gamma, bits, sparsity = 1, 0.0, 32, 0.0
    run_id = run_dir.name  # as compress.run does
    hw = {"array": f"{array[0]}x{array[1]}", "rows": array[0], "cols": array[1], "dataflow": "ws"}
    config = {
        "run_id": run_id,
        "kind": kind,
        "model": model,
        "preset": preset,
        "seed": seed,
        "compress": None
        if kind != "compressed"
        else {
            "max_paths": alpha,
            "gamma": gamma,
            "sparsity": sparsity,
            "bits": bits,
            "act_bits": bits,
            "quant": "off" if bits == 32 else "ptq",
            "strategy": "greedy",
            "section_size": None,
            "finetune_epochs": 1,
        },
        "hw": hw,
        "model_config": {"hidden_size": hidden, "synthetic": True},
    }
    if kind == "small_dense":
        config["small_dense"] = {"hidden_size": hidden}
    atomic_write_json(run_dir / "config.json", config)
    if status != "finished":
        atomic_write_json(
            run_dir / "metrics.json",
            {
                "status": status,
                "error": error or ("RuntimeError: made-up failure" if status == "failed" else None),
            },
        )
        return run_dir

    # The weights depend on the seed only, so every run of a sweep compresses the same matrices.
    rng = np.random.default_rng(seed)
    seq_len = 32
    layers_meta, layers_metrics, arrays, hw_layers = [], [], {}, []
    spike_rates = {} if model in _SPIKING else None
    for shape in _layer_shapes(model, hidden):
        if shape["kind"] == "lstm":
            rows, cols = 4 * shape["hidden_size"], shape["input_size"] + shape["hidden_size"]
            splits = [0, shape["input_size"], cols]
        else:
            rows, cols = shape["rows"], shape["cols"]
            splits = [0, cols]
        weight = rng.standard_normal((rows, cols)).astype(np.float32)
        if sparsity > 0:
            cut = np.quantile(np.abs(weight), sparsity)
            weight[np.abs(weight) <= cut] = 0.0
        mask = weight != 0
        groups = greedy_combine(mask, alpha, gamma, splits)
        control, values = _pack(weight, groups)
        name = shape["name"]
        nnz_before, nnz = int(mask.sum()), int((control >= 0).sum())
        ptr = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
        arrays[f"{name}/group_ptr"] = ptr
        arrays[f"{name}/group_cols"] = np.concatenate([np.asarray(g, np.int64) for g in groups])
        arrays[f"{name}/control"] = control
        if bits < 32:
            scale = (np.abs(values).max(axis=1) / (2 ** (bits - 1) - 1)).astype(np.float32)
            scale[scale == 0] = 1.0
            arrays[f"{name}/values"] = np.round(values / scale[:, None]).astype(np.float32)
            arrays[f"{name}/scale"] = scale
        else:
            arrays[f"{name}/values"] = values
        per_split = [
            sum(1 for g in groups if lo <= g[0] < hi) for lo, hi in zip(splits[:-1], splits[1:])
        ]
        rate = None
        if spike_rates is not None and shape["kind"] == "lstm":
            rate = round(0.08 + 0.05 * len(spike_rates) + 0.01 * seed, 4)
            spike_rates[name] = rate
        meta = {
            "name": name,
            "kind": shape["kind"],
            "rows": rows,
            "cols": cols,
            "col_splits": splits,
            "groups": len(groups),
            "groups_per_split": per_split,
            "max_paths": alpha,
            "gamma": gamma,
            "nnz_before": nnz_before,
            "nnz": nnz,
            "pruned_conflicts": nnz_before - nnz,
            "pruned_l1": 0.0,
            "weight_bits": bits,
            "act_bits": bits,
            "input_spike_rate": rate,
        }
        if shape["kind"] == "lstm":
            meta["input_size"], meta["hidden_size"] = shape["input_size"], shape["hidden_size"]
        layers_meta.append(meta)
        layers_metrics.append(
            {
                "name": name,
                "rows": rows,
                "cols": cols,
                "groups": len(groups),
                "nnz": nnz,
                "nnz_before": nnz_before,
                "packing_efficiency": nnz / (rows * len(groups)),
                "weight_bits": bits,
            }
        )
        # SCALE-Sim's weight-stationary count with K shrunk to the groups; bit width scales it.
        r, c = array
        tiles = math.ceil(len(groups) / r) * math.ceil(rows / c)
        cycles = (tiles * (2 * r + c + seq_len - 2) - 1) * max(1, bits // 8)
        macs = nnz * seq_len
        energy = macs * 4.6 * bits / 32 + (nnz * bits / 8) * 6.0
        hw_layers.append(
            {
                "name": name,
                "cycles": cycles,
                "utilization": min(1.0, macs / (cycles * r * c)),
                "energy_pj": energy,
            }
        )
    if packed:
        atomic_write_json(
            run_dir / "packed.json",
            {
                "format": "lstmpack.packed/1",
                "model": model,
                "workload": {"seq_len": seq_len, "batch": 1},
                "layers": layers_meta,
            },
        )
        np.savez(run_dir / "packed.npz", **arrays)

    weights_total = sum(m["rows"] * m["cols"] for m in layers_meta)
    nnz_total = sum(m["nnz"] for m in layers_meta)
    groups_total = sum(m["groups"] for m in layers_meta)
    density = nnz_total / weights_total
    metric, hib, base, sens = _QUALITY.get(model, _QUALITY["ptbc"])
    bit_penalty = {32: 0.0, 16: 0.001, 8: 0.004, 4: 0.05, 2: 0.3}.get(bits, 0.02)
    q = base + sens * (1 - density) ** 2 + abs(sens) * bit_penalty * (-1 if hib else 1)
    q += 0.002 * seed * abs(sens)
    if kind == "small_dense":  # a narrower model: worse, by a made-up margin
        q += 0.25 * sens
    ctrl_bits = math.ceil(math.log2(alpha + 1)) if alpha > 1 else 0
    model_bytes = int(
        nnz_total * bits / 8 + sum(m["rows"] * m["groups"] for m in layers_meta) * ctrl_bits / 8
    )
    if bits < 32:
        model_bytes += 4 * sum(m["rows"] for m in layers_meta)
    cycles_total = sum(h["cycles"] for h in hw_layers)
    macs_total = sum(m["nnz"] for m in layers_meta) * seq_len
    acs = 0.0
    if spike_rates is not None:
        acs = macs_total * 0.6
        macs_total *= 0.4
    metrics = {
        "status": "finished",
        "error": None,
        "quality": {
            "metric": metric,
            "higher_is_better": hib,
            "valid": round(q * (1.01 if not hib else 0.99), 5),
            "test": round(q, 5),
        },
        "weights_total": weights_total,
        "nonzero_weights": nnz_total,
        "array_columns": groups_total,
        "packing_efficiency": nnz_total / sum(m["rows"] * m["groups"] for m in layers_meta),
        "model_bytes": model_bytes,
        "wall_time_s": 30.0 + alpha,
        "layers": layers_metrics,
        "spike_rates": spike_rates,
        "macs_per_token": macs_total / seq_len if spike_rates is not None else None,
        "acs_per_token": acs / seq_len if spike_rates is not None else None,
    }
    r, c = array
    hwsim = {
        "config": {"rows": r, "cols": c, "dataflow": "ws", "clock_hz": 7e8},
        "total": {
            "cycles": cycles_total,
            "utilization": min(1.0, (nnz_total * seq_len) / (cycles_total * r * c)),
            "energy_pj": sum(h["energy_pj"] for h in hw_layers),
            "latency_s": cycles_total / 7e8,
            "macs": macs_total,
            "accumulates": acs,
        },
        "layers": hw_layers,
    }
    atomic_write_json(run_dir / "hwsim.json", hwsim)
    atomic_write_json(run_dir / "metrics.json", metrics)
    return run_dir


def make_sweep(
    root: str | os.PathLike,
    *,
    model: str = "ptbc",
    preset: str = "cpu",
    seed: int = 0,
    alphas: Sequence[int] = (1, 2, 3, 4, 8),
    gammas: Sequence[float] = (1.75,),
    bits: Sequence[int] = (32,),
    extra: Sequence[tuple[int, float, int]] = ((3, 1.75, 8), (3, 1.75, 4)),
    **kwargs,
) -> list[Path]:
    """A dense run plus every (alpha, gamma, bits) of the grid and of `extra`, under
    `root/<model>/<run-id>`."""
    root = Path(root) / model
    # What every run of the sweep shares, passed both to the run-id and to write_run.
    run = {"preset": preset, "seed": seed}
    dirs = [
        write_run(root / run_id_for("dense", **run), model=model, kind="dense", **run, **kwargs)
    ]
    points = [(a, g, b) for a in alphas for g in gammas for b in bits]
    points += [p for p in extra if p not in points]
    for a, g, b in points:
        point = {"alpha": a, "gamma": g, "bits": b, **run}
        dirs.append(
            write_run(root / run_id_for("compressed", **point), model=model, **point, **kwargs)
        )
    return dirs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m reports.synthetic", description=__doc__.splitlines()[0]
    )
    p.add_argument("out", help="runs root to fill (runs/<model>/<run-id>)")
    p.add_argument("--model", default="ptbc", choices=sorted(_QUALITY), help="default ptbc")
    p.add_argument("--hidden", type=int, default=64, help="LSTM width of the made model")
    p.add_argument(
        "--gamma",
        type=float,
        nargs="+",
        default=[0.25, 0.5, 1.0, 1.75],
        help="the sweep's conflict budgets",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dirs = make_sweep(
        args.out, model=args.model, gammas=args.gamma, hidden=args.hidden, sparsity=0.6
    )
    print(f"wrote {len(dirs)} made-up runs under {Path(args.out) / args.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
