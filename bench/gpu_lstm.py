"""AWD-LSTM training step on a GPU: our masked, weight-dropped LSTM against a plain nn.LSTM stack,
per precision, and whether ours stays on the fused cuDNN kernel.

The GPU twin of bench/lm_step.py (same two models, same step: forward, full-softmax loss,
backward, clipping, Adam): ours carries a 50% random mask registered as a parametrization on each
LSTM's fused weight (what the passes do) and DropConnect on W_hh, and hands the effective weights
to torch's fused LSTM (lm.lstm.MaskableLSTM); the plain stack is nn.LSTM. Both are timed
alternately in one process (CUDA-synchronized, median of rounds, ratio of each round's pair) in
fp32, bf16 and fp16 (autocast; fp16 with a GradScaler, as the trainers run them). Before timing,
one step of each is profiled: "cuDNN" says whether aten::_cudnn_rnn ran (forward) and
_cudnn_rnn_backward (backward), that is whether the masked LSTM still gets the fused kernel.

    python -m bench.gpu_lstm [--models ptbc enwik8] [--repeats 20] [--presets paper]

Without CUDA it says so and exits 0 (`python -m bench` runs it everywhere).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from bench.lm_step import VOCAB, PlainStack, _ours
from common.device import Amp
from lm.presets import get_preset

PRECISIONS = ("fp32", "bf16", "fp16")


def _step(model: nn.Module, loss_fn, opt, amp: Amp, inp, tgt) -> None:
    opt.zero_grad(set_to_none=True)
    with amp.autocast():
        loss = loss_fn(inp, tgt)
    amp.backward(loss)
    amp.unscale(opt)
    nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    amp.step(opt)


def cudnn_kernels(model: nn.Module, loss_fn, opt, amp: Amp, inp, tgt) -> tuple[bool, bool]:
    """Whether one training step ran cuDNN's fused RNN forward and backward kernels."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _step(model, loss_fn, opt, amp, inp, tgt)
        torch.cuda.synchronize()
    names = {e.key for e in prof.key_averages()}
    return "aten::_cudnn_rnn" in names, "aten::_cudnn_rnn_backward" in names


def measure(model_name: str, preset: str, precision: str, repeats: int) -> dict[str, object]:
    dev = torch.device("cuda")
    cfg = get_preset(model_name, preset)
    cfg = cfg.replace(wdrop=max(cfg.wdrop, 0.5))  # the regularized path, as bench.lm_step
    vocab = VOCAB[model_name]
    torch.manual_seed(0)
    plain = PlainStack(vocab, cfg.emsize, cfg.nhid, cfg.nlayers).train().to(dev)
    ours, ours_loss = _ours(cfg, vocab, 0.5)
    ours.to(dev)
    x = torch.randint(0, vocab, (cfg.bptt + 1, cfg.batch_size), device=dev)
    inp, tgt = x[:-1], x[1:]
    runs = {
        "plain": (plain, plain.loss, torch.optim.Adam(plain.parameters(), lr=1e-3)),
        "ours": (ours, ours_loss, torch.optim.Adam(ours.parameters(), lr=1e-3)),
    }
    amps = {name: Amp(precision, dev) for name in runs}
    for name, (m, fn, opt) in runs.items():  # warm-up: cuDNN plans, allocator
        for _ in range(2):
            _step(m, fn, opt, amps[name], inp, tgt)
    fwd, bwd = cudnn_kernels(*runs["ours"], amps["ours"], inp, tgt)
    plain_fwd, _ = cudnn_kernels(*runs["plain"], amps["plain"], inp, tgt)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, (m, fn, opt) in runs.items():
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            _step(m, fn, opt, amps[name], inp, tgt)
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    ratios = [o / p for o, p in zip(times["ours"], times["plain"])]
    tokens = cfg.bptt * cfg.batch_size
    ours_s = statistics.median(times["ours"])
    return {
        "shape": f"E{cfg.emsize} H{cfg.nhid} B{cfg.batch_size} T{cfg.bptt} V{vocab}",
        "plain_ms": statistics.median(times["plain"]) * 1e3,
        "ours_ms": ours_s * 1e3,
        "ratio": statistics.median(ratios),
        "ours_tok_s": tokens / ours_s,
        "cudnn": f"fwd {'yes' if fwd else 'NO'}, bwd {'yes' if bwd else 'NO'}"
        + ("" if plain_fwd else " (plain: NO)"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["ptbc", "enwik8"], choices=sorted(VOCAB))
    p.add_argument("--presets", nargs="+", default=["paper"], choices=["paper", "cpu", "smoke"])
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args([] if argv is None else argv)
    if not torch.cuda.is_available():
        print("bench.gpu_lstm: no CUDA device here; skipped (run it on a machine with a GPU)")
        return 0
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN "
          f"{torch.backends.cudnn.version()}, {args.repeats} rounds (median step time)\n")  # fmt: skip
    print("| model (preset shape) | precision | plain nn.LSTM stack | ours: mask + weight drop | "
          "ratio | ours tokens/s | cuDNN kernels (ours) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        for preset in args.presets:
            for precision in args.precisions:
                if precision == "bf16" and not torch.cuda.is_bf16_supported():
                    continue
                m = measure(name, preset, precision, args.repeats)
                print(f"| {name} {preset} ({m['shape']}) | {precision} | {m['plain_ms']:.1f} ms | "
                      f"{m['ours_ms']:.1f} ms | {m['ratio']:.3f}x | {m['ours_tok_s']:.0f} | "
                      f"{m['cudnn']} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
