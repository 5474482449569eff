"""Your own nn.LSTM through LSTMPack: a character model trained in its own loop, converted,
column-combined at alpha 3 while it keeps training, packed, costed on a systolic array, tabled.

    python examples/own_lstm.py                        # a made-up text; about a minute on 2 cores
    python examples/own_lstm.py --text my.txt --steps 2000 --hidden 256 --max-paths 4

Everything but five calls is plain PyTorch: lstmpack.convert, Compressor(...).prepare / .step /
.finalize, and write_record (+ table). The records land in --out (one folder per row), where
`python -m reports <out>` tables and plots them like compress.run's runs.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import lstmpack
from lstmpack import CombineConfig, Compressor, QuantConfig

WORDS = (
    "the a one two small large red blue cat dog bird fish sees likes eats finds runs sleeps "
    "quickly slowly near under over and but then while because table garden river house"
).split()


def sample_text(n_chars: int = 60_000, seed: int = 0) -> str:
    """A made-up English-like text of about `n_chars` characters (the default corpus): short
    sentences from a small vocabulary, so a small model learns something in a few hundred steps."""
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < n_chars:
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        sentence = " ".join(words).capitalize() + rng.choice(".!?") + "\n"
        out.append(sentence)
        size += len(sentence)
    return "".join(out)


@dataclass(frozen=True)
class Chars:
    """A text as character ids, split 90 / 5 / 5 into train, valid and test."""

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: str

    @classmethod
    def of(cls, text: str) -> Chars:
        if len(text) < 1000:
            raise ValueError(f"the text has {len(text)} characters; give at least 1000")
        vocab = "".join(sorted(set(text)))
        index = {c: i for i, c in enumerate(vocab)}
        ids = torch.tensor([index[c] for c in text], dtype=torch.long)
        a, b = int(0.9 * len(ids)), int(0.95 * len(ids))
        return cls(ids[:a], ids[a:b], ids[b:], vocab)


class CharLM(nn.Module):
    """Embedding -> a plain nn.LSTM -> a linear decoder: nothing LSTMPack-specific."""

    def __init__(self, vocab: int, emb: int = 32, hidden: int = 128, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def windows(data: torch.Tensor, batch: int, bptt: int, seed: int) -> tuple[torch.Tensor, ...]:
    """(inputs, targets) of `batch` random windows of `bptt` characters; the same for a seed."""
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(data) - bptt - 1, (batch,), generator=gen)
    idx = starts[:, None] + torch.arange(bptt + 1)
    chunk = data[idx]
    return chunk[:, :-1], chunk[:, 1:]


def train(
    model: nn.Module,
    data: torch.Tensor,
    steps: int,
    *,
    lr: float,
    batch: int,
    bptt: int,
    seed: int,
    on_step: Callable[[], object] | None = None,
    first: int = 0,
) -> None:
    """`steps` Adam steps on random windows; `on_step()` after each one (the Compressor's)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(first, first + steps):
        x, y = windows(data, batch, bptt, seed * 1_000_003 + step)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if on_step is not None:
            on_step()


@torch.no_grad()
def bpc(model: nn.Module, data: torch.Tensor, bptt: int, streams: int = 8) -> float:
    """Bits per character over `data`, read as `streams` contiguous streams with carried state."""
    model.eval()
    n = (len(data) - 1) // streams
    x_all = data[: n * streams].view(streams, n)
    y_all = data[1 : n * streams + 1].view(streams, n)
    state, nll = None, 0.0
    for i in range(0, n, bptt):
        logits, state = model(x_all[:, i : i + bptt], state)
        nll += F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y_all[:, i : i + bptt].reshape(-1), reduction="sum"
        ).item()
    return nll / (n * streams) / math.log(2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text", type=Path, default=None, help="a text file (default: made up)")
    p.add_argument("--chars", type=int, default=60_000, help="size of the made-up text")
    p.add_argument("--steps", type=int, default=300, help="dense training steps")
    p.add_argument("--finetune-steps", type=int, default=100, help="steps under the passes")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--emb", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--bptt", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-paths", type=int, default=3, help="alpha: columns per group")
    p.add_argument("--bits", type=int, default=8, help="weight and activation bits (32: float)")
    # a small model on a small array: on 128x128 every matrix here fits one fold, dense or not
    p.add_argument("--array", default="32x32", help="systolic array RxC for hwsim")
    p.add_argument("--out", type=Path, default=Path("runs/own_lstm"), help="run records")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        text = args.text.read_text(encoding="utf-8") if args.text else sample_text(args.chars)
        data = Chars.of(text)
        # column combining at alpha, masks set at the first step under the passes (chosen on
        # calibration batches and re-solved), then quantized after the fine-tune
        quant = QuantConfig(mode="ptq", bits=args.bits, act_bits=args.bits)
        comp = Compressor(
            CombineConfig(max_paths=args.max_paths, keep="activation", balance="row"),
            quant=quant if args.bits < 32 else None,
            reconstruct=True,
        )
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"own_lstm: error: {e}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    t0 = time.time()
    fit = dict(batch=args.batch, bptt=args.bptt, seed=args.seed)

    # 1. a plain PyTorch model, trained in its own loop
    model = CharLM(len(data.vocab), args.emb, args.hidden, args.layers)
    train(model, data.train, args.steps, lr=args.lr, **fit)

    # 2. converted: the same function, with layers the passes can mask; the dense baseline
    model = lstmpack.convert(model)
    quality = {"valid": bpc(model, data.valid, args.bptt), "test": bpc(model, data.test, args.bptt)}
    dense = lstmpack.pack(model, seq_len=args.bptt, name="own_lstm")
    records = [
        lstmpack.write_record(
            args.out / "dense", dense, quality, metric="bpc", array=args.array, seed=args.seed
        )
    ]

    # 3. the passes inside the same loop: the weights recover under the masks
    calibration = [windows(data.train, args.batch, args.bptt, -1 - i)[0] for i in range(4)]
    comp.prepare(model, calibration=calibration)
    train(
        model, data.train, args.finetune_steps, lr=args.lr / 3, on_step=comp.step,
        first=args.steps, **fit,
    )  # fmt: skip

    # 4. packed (the model now computes what the packed file holds), costed, recorded
    packed = comp.finalize(seq_len=args.bptt, name="own_lstm")
    quality = {"valid": bpc(model, data.valid, args.bptt), "test": bpc(model, data.test, args.bptt)}
    records.append(
        lstmpack.write_record(
            args.out / f"a{args.max_paths}",
            packed,
            quality,
            metric="bpc",
            compressor=comp,
            array=args.array,
            seed=args.seed,
        )
    )
    print(lstmpack.table(records))
    print(f"\n{time.time() - t0:.0f} s; records in {args.out} (python -m reports {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
