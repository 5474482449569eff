"""Training-step time with glibc's default malloc settings against `retain_freed_memory`.

The setting is process-wide and cannot be undone exactly, so each measurement is a child
process running the ptbc cpu preset's training step (the preset's threads, denormals flushed in
both): default and retained children alternate, and the median of the per-pair ratios of their
median step times is reported, with the minor page faults per step that explain it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _child(retain: bool, steps: int) -> dict[str, float]:
    import torch
    from torch import nn

    from bench.lm_step import VOCAB
    from common.runtime import retain_freed_memory
    from lm.model import build_model
    from lm.presets import CPU

    cfg = CPU["ptbc"]
    torch.set_flush_denormal(True)
    torch.set_num_threads(cfg.threads)
    if retain and not retain_freed_memory():
        raise SystemExit("retain_freed_memory() is a no-op here (not glibc)")
    torch.manual_seed(0)
    model = build_model(cfg, VOCAB["ptbc"]).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = torch.randint(0, VOCAB["ptbc"], (cfg.bptt + 1, cfg.batch_size))
    times, faults = [], []
    for step in range(steps + 2):  # two warm-up steps grow the heap and load kernels
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model.nll(model(x[:-1]).output, x[1:]).backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - t0)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return {"step_s": statistics.median(times), "faults": statistics.median(faults)}


def _run_child(retain: bool, steps: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.allocator", "--child", "retain" if retain else "default"]
    out = subprocess.run(cmd + ["--steps", str(steps)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3, help="default/retained child pairs")
    p.add_argument("--steps", type=int, default=12, help="timed steps per child")
    p.add_argument("--child", choices=("default", "retain"), help=argparse.SUPPRESS)
    # `python -m bench` calls main() with no arguments: use the defaults then, not sys.argv.
    args = p.parse_args([] if argv is None else argv)
    if args.child:
        print(json.dumps(_child(args.child == "retain", args.steps)))
        return 0
    rows = [
        (_run_child(False, args.steps), _run_child(True, args.steps)) for _ in range(args.pairs)
    ]
    ratios = [d["step_s"] / r["step_s"] for d, r in rows]
    from lm.presets import CPU

    cfg = CPU["ptbc"]
    tokens = cfg.bptt * cfg.batch_size
    print(f"ptbc cpu preset step (B{cfg.batch_size} T{cfg.bptt}, {cfg.threads} threads), "
          f"{args.pairs} pairs of children, {args.steps} timed steps each\n")  # fmt: skip
    print("| malloc | median step | tokens/s | minor page faults / step |")
    print("|---|---|---|---|")
    for label, k in (("glibc default", 0), ("retain_freed_memory", 1)):
        step = statistics.median(row[k]["step_s"] for row in rows)
        faults = statistics.median(row[k]["faults"] for row in rows)
        print(f"| {label} | {step * 1e3:.0f} ms | {tokens / step:.0f} | {faults:.0f} |")
    print(f"\nspeed-up (median of per-pair ratios): {statistics.median(ratios):.3f}x "
          f"(pairs: {', '.join(f'{r:.3f}' for r in ratios)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
