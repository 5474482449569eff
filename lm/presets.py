"""Presets per model: `paper` (the published commands), `cpu` (~30 min on 2 cores), `smoke`.

`PRESETS[model][preset]` is a frozen LMConfig. A compression run's view of these models (a
common.spec.ModelSpec) is lm.spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from lm.config import LMConfig

# The README commands of salesforce/awd-lstm-lm (char-level: "--optimizer adam" with "--when";
# ptbw: "python main.py --batch_size 20 --data data/penn --dropouti 0.4 --dropouth 0.25
# --seed 141 --epoch 500"); unlisted flags keep main.py's defaults (clip 0.25, nonmono 5,
# seed 1111, dropoute 0.1 for ptbw).
PAPER = {
    "ptbc": LMConfig(
        model="ptbc", preset="paper", emsize=200, nhid=1000, nlayers=3, bptt=150,
        batch_size=128, optimizer="adam", lr=2e-3, clip=0.25, wdrop=0.5, dropoute=0.0,
        dropouth=0.25, dropouti=0.1, dropout=0.1, alpha=0.0, beta=0.0, wdecay=1.2e-6,
        epochs=500, when=(300, 400), seed=1111,
    ),
    "enwik8": LMConfig(
        model="enwik8", preset="paper", emsize=400, nhid=1840, nlayers=3, bptt=200,
        batch_size=128, optimizer="adam", lr=1e-3, clip=0.25, wdrop=0.2, dropoute=0.0,
        dropouth=0.1, dropouti=0.1, dropout=0.4, alpha=0.0, beta=0.0, wdecay=1.2e-6,
        epochs=50, when=(25, 35), seed=1111,
    ),
    "ptbw": LMConfig(
        model="ptbw", preset="paper", emsize=400, nhid=1150, nlayers=3, bptt=70,
        batch_size=20, optimizer="sgd", lr=30.0, clip=0.25, wdrop=0.5, dropoute=0.1,
        dropouth=0.25, dropouti=0.4, dropout=0.4, alpha=2.0, beta=1.0, wdecay=1.2e-6,
        epochs=500, nonmono=5, seed=141,
    ),
}  # fmt: skip

# Chosen by measurement on the 2-core reference machine (BENCHMARKS.md, AWD-LSTM section).
# ptbc: ~1M parameters (a compute-optimal size for ~20 min at ~16k tokens/s), batch 64 on 2
# threads, and a forget-gate bias of 1: at nn.LSTM's uniform init this 3-layer stack sat at the
# unigram loss (4.34 bits) for the first 1.3M characters, with the bias it leaves it after ~0.6M
# (400-step probes: valid 4.34 -> 2.54 BPC). 300-step probes at batch 64: lr 2e-3, 4e-3, 8e-3 ->
# train 3.32, 2.67, 4.07 bits at step 300; forget bias 2 no better than 1. 8 slices of 375 steps
# (~2.4M characters each) so validation and checkpoints come often; almost no dropout since ~4
# passes over the data are far from overfitting. A half cosine from 6e-3 to 6e-5 beat the
# earlier constant 4e-3 with a /10 last slice in full-length probes (valid / test BPC 1.593 /
# 1.549 against 1.624 / 1.577; from 5e-3: 1.615 / 1.568; from 8e-3 with 150 warm-up steps, or a
# 2-layer H384 stack from 6e-3: behind after 3 slices, stopped). The dense run stays near 20
# minutes so `make demo` (dense + compress) fits in 30. ptbw: Adam instead of SGD + NT-ASGD (in
# a 150 s trial Adam reached valid ppl 547 against SGD's 781; NT-ASGD needs many epochs to pay
# off), batch 64 on 2 threads (5.6k tokens/s against 3.0k for batch 32 on one), 5 slices of 440
# steps (~2 passes over PTB each), moderate dropout: the previous preset's 4.7 passes ended with
# train loss above valid loss, far from overfitting. enwik8 is untested at this size (no copy of
# the data here): its cpu preset mirrors ptbc and validates on 500k bytes.
CPU = {
    "ptbc": LMConfig(
        model="ptbc", preset="cpu", emsize=128, nhid=256, nlayers=3, bptt=100,
        batch_size=64, optimizer="adam", lr=6e-3, lr_schedule="cosine", lr_min=6e-5, clip=0.25,
        wdrop=0.05, dropoute=0.0, dropouth=0.0, dropouti=0.0, dropout=0.0, forget_bias=1.0,
        alpha=0.0, beta=0.0, wdecay=1.2e-6, epochs=8, max_steps_per_epoch=375, when=(),
        seed=1111, eval_batch_size=10, test_batch_size=10, threads=2,
    ),
    "ptbw": LMConfig(
        model="ptbw", preset="cpu", emsize=128, nhid=256, nlayers=3, bptt=70,
        batch_size=64, optimizer="adam", lr=4e-3, lr_schedule="cosine", lr_min=4e-5, clip=0.25,
        wdrop=0.2, dropoute=0.05, dropouth=0.15, dropouti=0.2, dropout=0.25, alpha=2.0, beta=1.0,
        wdecay=1.2e-6, epochs=5, max_steps_per_epoch=440, when=(), seed=141, eval_batch_size=10,
        test_batch_size=10, threads=2,
    ),
    "enwik8": LMConfig(
        model="enwik8", preset="cpu", emsize=128, nhid=256, nlayers=3, bptt=100,
        batch_size=64, optimizer="adam", lr=6e-3, lr_schedule="cosine", lr_min=6e-5, clip=0.25,
        wdrop=0.05, dropoute=0.0, dropouth=0.0, dropouti=0.0, dropout=0.0, forget_bias=1.0,
        alpha=0.0, beta=0.0, wdecay=1.2e-6, epochs=8, max_steps_per_epoch=375, when=(),
        seed=1111, eval_batch_size=10, test_batch_size=10, threads=2, eval_tokens=500_000,
    ),
}  # fmt: skip

# Seconds, not minutes: a tiny model, a prefix of the data, a few steps.
SMOKE = {
    name: LMConfig(
        model=name, preset="smoke", emsize=16, nhid=32, nlayers=3, bptt=20, batch_size=8,
        optimizer=PAPER[name].optimizer, lr=PAPER[name].lr, clip=0.25, wdrop=0.2,
        dropoute=0.1, dropouth=0.1, dropouti=0.1, dropout=0.1,
        alpha=PAPER[name].alpha, beta=PAPER[name].beta, wdecay=1.2e-6, epochs=2, seed=1111,
        eval_batch_size=4, test_batch_size=4, max_steps_per_epoch=10, train_tokens=20_000,
        eval_tokens=4_000, log_interval=5,
    )
    for name in PAPER
}  # fmt: skip

PRESETS: Mapping[str, Mapping[str, LMConfig]] = MappingProxyType(
    {
        name: MappingProxyType({"paper": PAPER[name], "cpu": CPU[name], "smoke": SMOKE[name]})
        for name in PAPER
    }
)


def get_preset(model: str, preset: str) -> LMConfig:
    if model not in PRESETS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(PRESETS)}")
    if preset not in PRESETS[model]:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS[model])}")
    return PRESETS[model][preset]


# --------------------------------------------------------------------------- equal columns

# How `compress.run --small-dense` shrinks a model to a number of array columns (recorded with it).
EQUAL_COLUMNS_RULE = (
    "the largest hidden size nhid (below the preset's) whose dense LSTM layers have at most the "
    "target's array columns, sum over layers of in + H; emsize (the embedding, the tied decoder "
    "and the last layer's H) is kept"
)


def lstm_sizes(cfg: LMConfig) -> list[tuple[int, int]]:
    """(input size, hidden size) of each LSTM layer, as lm.model.AWDLSTM builds them: emsize ->
    nhid -> ... -> emsize, the last layer ending at emsize so the decoder can share the embedding."""
    sizes = [cfg.emsize] + [cfg.nhid] * (cfg.nlayers - 1) + [cfg.emsize]
    return list(zip(sizes[:-1], sizes[1:]))


def lstm_columns(cfg: LMConfig, alpha: int = 1) -> int:
    """Array columns of the LSTM layers' fused [W_ih | W_hh]: in + H per layer at alpha = 1; at
    alpha > 1 the fewest that combining reaches, since a group holds at most alpha columns and
    never mixes input and recurrent ones: ceil(in / alpha) + ceil(H / alpha)."""
    return sum(math.ceil(i / alpha) + math.ceil(h / alpha) for i, h in lstm_sizes(cfg))


def equal_columns_config(cfg: LMConfig, columns: int) -> LMConfig:
    """`cfg` with the largest nhid below its own whose LSTM layers have at most `columns` array
    columns (EQUAL_COLUMNS_RULE); ValueError when no hidden size gets there."""
    dense = lstm_columns(cfg)
    if columns >= dense:
        raise ValueError(
            f"{columns} array columns is no fewer than the dense {cfg.model} model's {dense}"
        )
    for nhid in range(cfg.nhid - 1, 0, -1):
        small = cfg.replace(nhid=nhid)
        if lstm_columns(small) <= columns:
            return small
    raise ValueError(
        f"no hidden size gives {columns} array columns or fewer: at nhid 1 (emsize {cfg.emsize} "
        f"kept) the {cfg.model} model has {lstm_columns(cfg.replace(nhid=1))}"
    )
