"""AWD-LSTM training step: our masked, weight-dropped model against a plain nn.LSTM stack.

Both do one full training step (forward, full-softmax loss, backward, Adam step) on the same
shapes. Ours carries every regularizer of the preset plus a 50% random mask registered as a
parametrization on each LSTM's fused weight (what the pruning pass does) and DropConnect on
W_hh; the plain stack has none of it (the limit). The two are timed alternately in one process
and the ratio of medians is reported, so machine load moves both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn.utils import parametrize

from common.runtime import configure_cpu
from compress.parametrize import Mask
from lm.config import LMConfig
from lm.model import build_model
from lm.presets import CPU
from lm.regularizers import activation_regularization, temporal_activation_regularization

VOCAB = {"ptbc": 50, "ptbw": 10_000, "enwik8": 205}


class PlainStack(nn.Module):
    """Embedding -> 3 nn.LSTM -> tied decoder, no regularization."""

    def __init__(self, vocab: int, emsize: int, nhid: int, nlayers: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, emsize)
        sizes = [emsize] + [nhid] * (nlayers - 1) + [emsize]
        self.rnns = nn.ModuleList(nn.LSTM(sizes[k], sizes[k + 1]) for k in range(nlayers))
        self.decoder = nn.Linear(emsize, vocab)
        self.decoder.weight = self.encoder.weight

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        for rnn in self.rnns:
            h, _ = rnn(h)
        logits = self.decoder(h.reshape(-1, h.size(-1)))
        return nn.functional.cross_entropy(logits, y.reshape(-1))


def _ours(cfg: LMConfig, vocab: int, density: float) -> tuple[nn.Module, callable]:
    model = build_model(cfg, vocab).train()
    g = torch.Generator().manual_seed(0)
    for rnn in model.rnns:
        mask = Mask(rnn.weight.shape)
        mask.set_(torch.rand(rnn.weight.shape, generator=g) < density)
        parametrize.register_parametrization(rnn, "weight", mask)

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model(x)
        value = model.nll(out.output, y)
        if cfg.alpha:
            value = value + activation_regularization(out.dropped_outputs[-1], cfg.alpha)
        if cfg.beta:
            value = value + temporal_activation_regularization(out.raw_outputs[-1], cfg.beta)
        return value

    return model, loss


def measure(model_name: str, repeats: int = 15, density: float = 0.5) -> dict[str, float]:
    cfg = CPU[model_name]
    # weight drop at least the paper's 0.5 so the benchmark covers the regularized path
    cfg = cfg.replace(wdrop=max(cfg.wdrop, 0.5))
    vocab = VOCAB[model_name]
    torch.manual_seed(0)
    plain = PlainStack(vocab, cfg.emsize, cfg.nhid, cfg.nlayers).train()
    ours, ours_loss = _ours(cfg, vocab, density)
    x = torch.randint(0, vocab, (cfg.bptt + 1, cfg.batch_size))
    inp, tgt = x[:-1], x[1:]
    runs = {
        "plain": (plain.loss, torch.optim.Adam(plain.parameters(), lr=1e-3)),
        "ours": (ours_loss, torch.optim.Adam(ours.parameters(), lr=1e-3)),
    }
    params = {"plain": list(plain.parameters()), "ours": list(ours.parameters())}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats + 1):
        for name, (loss_fn, opt) in runs.items():
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss_fn(inp, tgt).backward()
            nn.utils.clip_grad_norm_(params[name], 0.25)
            opt.step()
            if r:  # the first round warms up allocators and kernels
                times[name].append(time.perf_counter() - t0)
    plain_s = statistics.median(times["plain"])
    ours_s = statistics.median(times["ours"])
    tokens = cfg.bptt * cfg.batch_size
    # Each round times the two back to back, so the median of the per-round ratios cancels the
    # load of a shared machine better than a ratio of medians taken over minutes.
    ratios = [o / p for o, p in zip(times["ours"], times["plain"])]
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "plain_ms": plain_s * 1e3,
        "ours_ms": ours_s * 1e3,
        "ratio": statistics.median(ratios),
        "ratio_q1": quartiles[0],
        "ratio_q3": quartiles[2],
        "ours_tok_s": tokens / ours_s,
        "plain_tok_s": tokens / plain_s,
        "shape": f"E{cfg.emsize} H{cfg.nhid} B{cfg.batch_size} T{cfg.bptt} V{vocab}",
        "wdrop": cfg.wdrop,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["ptbc", "ptbw"], choices=sorted(VOCAB))
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1; the lm cpu presets train on 2)",
    )
    # `python -m bench` calls main() with no arguments: use the defaults then, not sys.argv.
    args = p.parse_args([] if argv is None else argv)
    configure_cpu(args.threads)  # as the training CLIs do
    print(f"threads: {torch.get_num_threads()}, rounds: {args.repeats} (median step time)\n")
    print(
        "| model (cpu preset shape) | plain nn.LSTM stack | ours: mask + weight drop + preset "
        "regularizers | ratio (median of rounds) | ratio IQR | ours tokens/s |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.models:
        m = measure(name, repeats=args.repeats)
        print(
            f"| {name} ({m['shape']}, wdrop {m['wdrop']}) | {m['plain_ms']:.0f} ms | "
            f"{m['ours_ms']:.0f} ms | {m['ratio']:.3f}x | {m['ratio_q1']:.3f}-{m['ratio_q3']:.3f} "
            f"| {m['ours_tok_s']:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
