"""Column-combining benchmark: Numba strategies on AWD-LSTM-sized matrices, and the plain twin.

Run: ``python -m bench.column_combine [--quick] [--out results.json]`` (or ``python -m bench``).
Prints markdown tables for BENCHMARKS.md and writes the raw figures as JSON (default
bench/out/column_combine.json).

The measurement runs in a child process with one thread everywhere (NUMBA_NUM_THREADS,
OMP/OPENBLAS/MKL_NUM_THREADS = 1), so the numpy twin's BLAS calls are single-threaded too.
Patterns are i.i.d. Bernoulli(density), seeded. Each Numba timing is the minimum over REPEATS
calls, both as thread CPU time (robust to other processes sharing the cores) and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from common.atomic import atomic_write_text

SHAPES = {
    "ptbc 4000x1200": (4000, 1200),
    "ptbc 4000x2000": (4000, 2000),
    "ptbw 4600x2300": (4600, 2300),
    "enwik8 7360x3680": (7360, 3680),
}
DENSITIES = (0.1, 0.3, 1.0)
ALPHAS = (3, 8)
GAMMAS = (0.5, 1.75)
TWIN_SHAPE = (1024, 256)
SCALE_SHAPE = (256, 256)
REPEATS = 5
STRATEGIES = ("reference", "greedy", "min_conflict", "reference_window")  # the table's order
SEED = 0
# The kernel's speed budget: combining must not slow a prune event down noticeably. Greedy on
# 4000x2000 (ptbc's fused LSTM), density 0.1, alpha 8, gamma 0.5 under 50 ms ...
TARGET_MS = 50.0
# ... and the Numba reference at least 2000x faster than the plain twin on 1024x256.
TARGET_RATIO = 2000.0
_CHILD_ENV = "LSTMPACK_BENCH_COLUMN_COMBINE_CHILD"
_ONE_THREAD = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_REPO = Path(__file__).resolve().parents[1]

_COMPILE_SNIPPET = """
import time
t0 = time.perf_counter()
import numpy as np
from compress.kernels import column_combine as cc
t1 = time.perf_counter()
nz = np.random.default_rng(0).random((70, 90)) < 0.2
for s in cc.STRATEGIES:
    cc.group_columns(nz, 3, 0.5, strategy=s)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _pattern(shape: tuple[int, int], density: float, seed: int):
    import numpy as np

    return np.random.default_rng(seed).random(shape) < density


def _skewed_pattern(shape: tuple[int, int], density: float, seed: int):
    """Mean `density`, but column and row densities vary (Beta / Gamma), as after magnitude
    pruning, where some inputs and gate rows keep far more weights than others."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows, cols = shape
    col_p = rng.beta(1.0, 9.0, cols) * 10 * density
    row_p = rng.gamma(4.0, 0.25, rows)
    return rng.random(shape) < np.clip(np.outer(row_p, col_p), 0.0, 1.0)


def _time_min(fn, repeats: int):
    cpu = wall = float("inf")
    out = None
    for _ in range(repeats):
        c0, w0 = time.thread_time(), time.perf_counter()
        out = fn()
        cpu = min(cpu, time.thread_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return cpu * 1e3, wall * 1e3, out


def _compile_times() -> dict[str, float]:
    """JIT compile time (empty cache) and cache-load time (warm cache), each in a fresh process."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, "-c", _COMPILE_SNIPPET],
                env=env,
                cwd=_REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append([float(x) for x in proc.stdout.split()])
    return {
        "import_s": runs[1][0],
        "first_call_cold_cache_s": runs[0][1],
        "first_call_warm_cache_s": runs[1][1],
    }


def _measure(quick: bool) -> dict:
    import numba
    import numpy as np
    from tqdm import tqdm

    from compress.kernels import column_combine as cc
    from compress.kernels import reference as twin

    numba.set_num_threads(1)
    record: dict = {
        "repeats": REPEATS,
        "seed": SEED,
        "threads": {k: os.environ.get(k) for k in _ONE_THREAD},
        "compile": _compile_times(),
    }
    shapes = dict(list(SHAPES.items())[:2]) if quick else SHAPES
    grid = []
    jobs = [(n, d, a, g) for n in shapes for d in DENSITIES for a in ALPHAS for g in GAMMAS]
    patterns: dict = {}
    for name, density, alpha, gamma in tqdm(jobs, desc="column combining", file=sys.stderr):
        key = (name, density)
        if key not in patterns:
            patterns.clear()
            patterns[key] = _pattern(shapes[name], density, SEED)
        nz = patterns[key]
        row = {"matrix": name, "density": density, "alpha": alpha, "gamma": gamma}
        row["nonzero_cols"] = int(nz.any(axis=0).sum())
        row.update(_time_strategies(cc, nz, alpha, gamma))
        grid.append(row)
    record["grid"] = grid

    skewed = []
    for density, alpha, gamma in tqdm(
        [(d, a, g) for d in (0.1, 0.3) for a in ALPHAS for g in GAMMAS],
        desc="skewed 4000x2000",
        file=sys.stderr,
    ):
        nz = _skewed_pattern(SHAPES["ptbc 4000x2000"], density, SEED)
        row = {"density": float(nz.mean()), "alpha": alpha, "gamma": gamma}
        row["nonzero_cols"] = int(nz.any(axis=0).sum())
        row.update(_time_strategies(cc, nz, alpha, gamma))
        skewed.append(row)
    record["skewed"] = skewed

    twin_rows = []
    twin_jobs = [(d, a, g) for d in DENSITIES for a in ALPHAS for g in GAMMAS]
    for density, alpha, gamma in tqdm(twin_jobs, desc="twin 1024x256", file=sys.stderr):
        nz = _pattern(TWIN_SHAPE, density, SEED)
        cpu, wall, ref = _time_min(
            partial(cc.group_columns, nz, alpha, gamma, strategy="reference"), 20
        )
        t_cpu, t_wall, tw = _time_min(partial(twin.group_columns, nz, alpha, gamma), 1)
        same = bool(np.array_equal(ref[0], tw[0]) and np.array_equal(ref[1], tw[1]))
        twin_rows.append(
            {
                "density": density,
                "alpha": alpha,
                "gamma": gamma,
                "numba_cpu_ms": cpu,
                "numba_wall_ms": wall,
                "twin_cpu_ms": t_cpu,
                "twin_wall_ms": t_wall,
                "ratio_cpu": t_cpu / cpu,
                "groups": len(ref[0]) - 1,
                "identical": same,
            }
        )
    record["twin"] = twin_rows
    nz = _pattern(SCALE_SHAPE, 0.1, SEED)
    cpu, wall, _ = _time_min(lambda: cc.group_columns(nz, 8, 0.5, strategy="reference"), 20)
    t_cpu, t_wall, _ = _time_min(lambda: twin.group_columns(nz, 8, 0.5), 1)
    record["scale_256"] = {"numba_cpu_ms": cpu, "twin_cpu_ms": t_cpu, "ratio_cpu": t_cpu / cpu}
    record["per_merge"] = _per_merge_costs(cc, twin)
    return record


def _time_strategies(cc, nz, alpha: int, gamma: float) -> dict:
    """Each strategy's best time over REPEATS calls, its groups, pruned weights and winner."""
    out = {}
    for s in STRATEGIES:
        cpu, wall, res = _time_min(
            partial(cc.group_columns_with_stats, nz, alpha, gamma, strategy=s), REPEATS
        )
        out[s] = {
            "cpu_ms": cpu,
            "wall_ms": wall,
            "groups": len(res[0]) - 1,
            "pruned": res[2],
            "winner": res[3],
        }
    return out


def _literal_conflict_table(counts):
    """conflicts(a+b) straight from the definition, sum_r max(0, n_r(a) + n_r(b) - 1), over
    G x G x rows elements as the published code does (in row blocks to bound memory)."""
    import numpy as np

    g = counts.shape[1]
    out = np.zeros((g, g), np.int64)
    c = counts.astype(np.int16)
    for r0 in range(0, c.shape[0], 64):
        blk = c[r0 : r0 + 64]
        out += np.maximum(blk[:, :, None] + blk[:, None, :] - 1, 0).sum(axis=0, dtype=np.int64)
    return out


def _per_merge_costs(cc, twin) -> dict:
    """Where the twin ratio comes from: cost of one merge step in each formulation (1024x256,
    density 0.1, alpha 8, gamma 0.5; G = 256 singleton groups, the first and largest table)."""
    nz = _pattern(TWIN_SHAPE, 0.1, SEED)
    counts = nz.astype("int64")
    matmul_ms, _, _ = _time_min(partial(twin._pairwise_tables, counts), 5)
    literal_ms, _, _ = _time_min(partial(_literal_conflict_table, counts), 1)
    numba_ms, _, out = _time_min(
        partial(cc.group_columns_with_stats, nz, 8, 0.5, strategy="reference"), 20
    )
    merges = int(nz.any(axis=0).sum()) - (len(out[0]) - 1)
    return {
        "twin_table_matmul_ms": matmul_ms,
        "published_style_table_ms": literal_ms,
        "numba_ms_per_merge": numba_ms / max(merges, 1),
        "merges": merges,
    }


def _fmt(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _strategy_cells(r: dict, with_ms: bool) -> str:
    """The cells both grids share: reference and greedy side by side, the other two strategies'
    groups / pruned (/ ms, with_ms)."""
    ref, gr, mc, rw = (r[s] for s in STRATEGIES)

    def brief(x: dict) -> str:
        return f"{x['groups']} / {x['pruned']}" + (f" / {_fmt(x['cpu_ms'])}" if with_ms else "")

    return (
        f"| {_fmt(ref['cpu_ms'])} | {_fmt(gr['cpu_ms'])} | {ref['groups']} | {gr['groups']} "
        f"| {ref['pruned']} | {gr['pruned']} | {gr['winner']} | {brief(mc)} | {brief(rw)} |"
    )


def render(record: dict) -> str:
    lines = []
    c = record["compile"]
    lines.append(
        f"JIT: first call with an empty cache {c['first_call_cold_cache_s']:.1f} s (compile), "
        f"with the on-disk cache (`cache=True`) {c['first_call_warm_cache_s']:.2f} s; "
        f"import {c['import_s']:.2f} s. Not included below."
    )
    lines.append("")
    lines.append(
        "| matrix | density | alpha | gamma | nonzero cols | reference ms | greedy ms "
        "| reference groups | greedy groups | reference pruned | greedy pruned | greedy took "
        "| min_conflict groups / pruned / ms | reference_window groups / pruned / ms |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in record["grid"]:
        lines.append(
            f"| {r['matrix']} | {r['density']} | {r['alpha']} | {r['gamma']} | {r['nonzero_cols']} "
            + _strategy_cells(r, with_ms=True)
        )
    lines.append("")
    lines.append(
        "Skewed patterns (4000x2000; column densities Beta(1,9)-shaped, row densities "
        "Gamma(4)-shaped, mean as given):"
    )
    lines.append("")
    lines.append(
        "| density | alpha | gamma | nonzero cols | reference ms | greedy ms | reference groups "
        "| greedy groups | reference pruned | greedy pruned | greedy took "
        "| min_conflict groups / pruned | reference_window groups / pruned |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in record.get("skewed", []):
        lines.append(
            f"| {r['density']:.3f} | {r['alpha']} | {r['gamma']} | {r['nonzero_cols']} "
            + _strategy_cells(r, with_ms=False)
        )
    lines.append("")
    lines.append(
        "| twin 1024x256: density | alpha | gamma | groups | Numba reference ms | twin ms "
        "| ratio | identical groups |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in record["twin"]:
        lines.append(
            f"| {r['density']} | {r['alpha']} | {r['gamma']} | {r['groups']} "
            f"| {_fmt(r['numba_cpu_ms'])} | {_fmt(r['twin_cpu_ms'])} | {r['ratio_cpu']:.0f}x "
            f"| {'yes' if r['identical'] else 'NO'} |"
        )
    s = record["scale_256"]
    lines.append("")
    lines.append(
        f"256x256 (density 0.1, alpha 8, gamma 0.5): Numba reference {_fmt(s['numba_cpu_ms'])} ms, "
        f"twin {_fmt(s['twin_cpu_ms'])} ms, ratio {s['ratio_cpu']:.0f}x."
    )
    m = record.get("per_merge")
    if m:
        lines.append(
            f"One merge step at G = 256 groups (1024x256, density 0.1): the twin's table by one "
            f"matmul {_fmt(m['twin_table_matmul_ms'])} ms; the same table from the definition "
            f"over G x G x rows elements, as the published code builds it, "
            f"{_fmt(m['published_style_table_ms'])} ms; the Numba reference "
            f"{m['numba_ms_per_merge'] * 1e3:.1f} us per merge ({m['merges']} merges)."
        )
    key = [
        r
        for r in record["grid"]
        if r["matrix"] == "ptbc 4000x2000"
        and (r["density"], r["alpha"], r["gamma"]) == (0.1, 8, 0.5)
    ]
    if key:
        g = key[0]["greedy"]
        verdict = "met" if g["cpu_ms"] < TARGET_MS else "NOT met"
        lines.append(
            f"Target greedy 4000x2000/0.1/8/0.5 < {TARGET_MS:.0f} ms: {_fmt(g['cpu_ms'])} ms CPU "
            f"({_fmt(g['wall_ms'])} ms wall), {verdict}."
        )
    worst = min(r["ratio_cpu"] for r in record["twin"])
    verdict = "met" if worst >= TARGET_RATIO else "NOT met"
    lines.append(
        f"Target Numba reference >= {TARGET_RATIO:.0f}x the twin on 1024x256: smallest ratio "
        f"{worst:.0f}x, {verdict}."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.column_combine", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="only the two ptbc shapes")
    parser.add_argument(
        "--out",
        type=Path,
        default=_REPO / "bench" / "out" / "column_combine.json",
        help="where the raw figures go as JSON (default: bench/out/column_combine.json)",
    )
    args = parser.parse_args([] if argv is None else argv)
    if os.environ.get(_CHILD_ENV) != "1":
        # Re-run in a child whose thread counts are fixed before numpy/numba load.
        env = dict(os.environ, **{k: "1" for k in _ONE_THREAD}, **{_CHILD_ENV: "1"})
        cmd = [sys.executable, "-m", "bench.column_combine"]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--out", str(args.out.resolve())]
        return subprocess.run(cmd, env=env, cwd=_REPO).returncode
    record = _measure(args.quick)
    # no final newline: the figures already on disk were written this way
    atomic_write_text(args.out, json.dumps(record, indent=2))
    print("## Column combining\n")
    print(render(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
