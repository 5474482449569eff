"""ELMo's configuration: `ELMoConfig`, its choices and the presets (smoke, cpu, paper)."""

from __future__ import annotations

from dataclasses import dataclass

from common.configs import ConfigMixin, from_dict

__all__ = [
    "CORPORA",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "PAPER_FILTERS",
    "PRESETS",
    "ELMoConfig",
    "preset_config",
]

CORPORA = ("ptb", "lm1b")  # word PTB (catalog ptb_word) | the 1B Word Benchmark (user-supplied)
OPTIMIZERS = ("adam", "adagrad")
LR_SCHEDULES = ("cosine", "constant")
# bilm-tf's options for the published ELMo (width, channels): 2048 channels in all
PAPER_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024))


def _filters(value: object) -> tuple[tuple[int, int], ...]:
    """`value` (pairs, or JSON's lists of lists) as ((width, channels), ...); ValueError unless
    every width and channel count is an integer >= 1 and the widths are distinct."""
    try:
        pairs = tuple((w, c) for w, c in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"filters must be (width, channels) pairs, got {value!r}") from None
    ints = all(isinstance(x, int) and not isinstance(x, bool) for pair in pairs for x in pair)
    if not pairs or not ints or any(w < 1 or c < 1 for w, c in pairs):
        raise ValueError(f"filters must be (width, channels) pairs of integers >= 1, got {value!r}")
    if len({w for w, _ in pairs}) != len(pairs):
        raise ValueError(f"filters must have distinct widths, got {value!r}")
    return pairs


@dataclass(frozen=True)
class ELMoConfig(ConfigMixin):
    """Everything that decides a run; stored in config.json and in every checkpoint."""

    preset: str = "cpu"
    seed: int = 0
    # data
    corpus: str = "ptb"
    max_chars: int = 50  # characters per token, begin/end-of-word markers included
    # lm1b only: "" builds the vocabulary from the training shards (tokens seen at least
    # vocab_min_count times, by frequency; the benchmark's own rule is 3); else a file of one
    # token per line (first field), most frequent first, read from the dataset's folder when
    # relative
    vocab_file: str = ""
    vocab_min_count: int = 3
    train_shards: int = 0  # lm1b only: the first N of the 99 training shards; 0 = all
    train_tokens: int = 0  # a prefix of the training stream; 0 = all
    eval_tokens: int = 0  # a prefix of the valid and test streams; 0 = all
    # model: character CNN -> highway -> projection -> two LSTM stacks (forward, backward)
    char_emb: int = 16
    filters: tuple[tuple[int, int], ...] = PAPER_FILTERS
    highway: int = 2
    hidden: int = 4096  # LSTM cell width
    proj: int = 512  # the LSTM's projection: the width of every token representation
    layers: int = 2
    residual: bool = True  # add layer k-1's output to layer k's (k >= 1)
    dropout: float = 0.1  # on each layer's input and on the output the softmax reads
    # the softmax shared by both directions: 0 = full; N > 0 = sampled softmax with N candidates
    # per direction and step (TF's log-uniform sampler; training only, evaluation is full)
    sampled_softmax: int = 0
    # training
    bptt: int = 20  # tokens per window; the LSTM state carries over between windows
    batch_size: int = 128  # streams per direction
    epochs: int = 10
    max_steps: int = 0  # cap on optimizer steps; 0 = the whole epochs
    optimizer: str = "adagrad"
    lr: float = 0.2
    lr_min: float = 0.2
    lr_schedule: str = "constant"  # cosine: warm-up, then lr -> lr_min over the run
    warmup_steps: int = 0
    weight_decay: float = 0.0
    clip: float = 10.0  # max gradient norm; 0 = off
    # evaluation: both splits read as eval_batch_size streams in windows of bptt
    eval_batch_size: int = 10
    # bookkeeping
    checkpoint_every: int = 500  # optimizer steps between checkpoints (and at every epoch end)
    log_interval: int = 50
    threads: int = 0  # its own CLI's torch threads (0: torch's default); not compress.run's

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", _filters(self.filters))
        for name, allowed in (("corpus", CORPORA), ("optimizer", OPTIMIZERS),
                              ("lr_schedule", LR_SCHEDULES)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not allowed; choose one of "
                    f"{', '.join(allowed)}"
                )
        positive = ("max_chars", "vocab_min_count", "char_emb", "hidden", "proj", "layers",
                    "bptt", "batch_size", "eval_batch_size", "log_interval")  # fmt: skip
        for name in positive:
            _check_int(self, name, 1)
        for name in ("seed", "highway", "train_shards", "train_tokens", "eval_tokens", "epochs",
                     "max_steps", "sampled_softmax", "warmup_steps", "checkpoint_every",
                     "threads"):  # fmt: skip
            _check_int(self, name, 0)
        if self.max_chars < 3:
            raise ValueError(f"max_chars must be >= 3 (two markers and a character), got "
                             f"{self.max_chars}")  # fmt: skip
        widest = max(w for w, _ in self.filters)
        if widest > self.max_chars:
            raise ValueError(f"filter width {widest} is wider than max_chars={self.max_chars}")
        if self.proj >= self.hidden:
            raise ValueError(f"proj must be smaller than hidden, got proj={self.proj}, "
                             f"hidden={self.hidden}")  # fmt: skip
        if self.train_shards > 99:
            raise ValueError(f"train_shards must be at most 99 (lm1b's training shards), got "
                             f"{self.train_shards}")  # fmt: skip
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be true or false, got {self.residual!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not 0 < self.lr_min <= self.lr:
            raise ValueError(f"need 0 < lr_min <= lr, got lr={self.lr!r}, lr_min={self.lr_min!r}")
        for name in ("clip", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def char_channels(self) -> int:
        """The CNN's output width: the channels of every filter, max-pooled and concatenated."""
        return sum(c for _, c in self.filters)

    def run_id(self) -> str:
        return f"{self.preset}-{self.corpus}-s{self.seed}"


def _check_int(cfg: ELMoConfig, name: str, low: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


PRESETS: dict[str, dict] = {
    # Seconds: a tiny model on a prefix of the data, for tests and `--preset smoke`.
    "smoke": dict(
        max_chars=12,
        train_tokens=4000,
        eval_tokens=1000,
        char_emb=8,
        filters=((1, 8), (2, 8), (3, 16)),
        highway=1,
        hidden=32,
        proj=16,
        bptt=10,
        batch_size=8,
        epochs=2,
        max_steps=20,
        optimizer="adam",
        lr=5e-3,
        lr_min=5e-4,
        lr_schedule="cosine",
        clip=1.0,
        eval_batch_size=4,
        checkpoint_every=10,
        log_interval=5,
    ),
    # Word PTB, 4 passes (2,908 steps of 64 x 20 tokens a direction): ELMo's architecture scaled
    # down (filter widths 1..5, 384 channels, LSTM 512 projected to 128; 4.3M parameters, 1.3M
    # of them the softmax) and ELMo's unroll of 20, Adam on a cosine. Measured (2026-11-30, the
    # 2-core machine shared with two other runs): mean test perplexity 132.2 (forward 133.3,
    # backward 131.2; valid 137.9) in 4,579 s of training, 1,624 tokens/s. That is well over the
    # 30 minutes meant for a cpu preset: a step costs ~1.3-2 CPU-seconds (an early probe said
    # 0.61), the 10k-word softmax run once per direction ~half of it, the four projected LSTM
    # layers ~30%, the character CNN ~15%.
    "cpu": dict(
        max_chars=24,  # PTB's longest word has 19 characters
        char_emb=16,
        filters=((1, 32), (2, 32), (3, 64), (4, 128), (5, 128)),
        highway=2,
        hidden=512,
        proj=128,
        dropout=0.2,
        bptt=20,
        batch_size=64,
        epochs=4,
        optimizer="adam",
        lr=3e-3,
        lr_min=3e-5,
        lr_schedule="cosine",
        warmup_steps=100,
        clip=1.0,
        checkpoint_every=300,
        threads=2,
    ),
    # bilm-tf's published ELMo on the 1B Word Benchmark: the defaults above (char CNN 2048
    # channels, 2 highway, LSTM 4096 -> 512, 2 layers, residual, dropout 0.1, batch 128,
    # unroll 20, Adagrad 0.2, clip 10, 10 epochs) with its 8192-sample softmax. The LSTM's
    # cell and projection clipping (3) is left out: the fused kernel has no such step.
    "paper": dict(
        corpus="lm1b",
        sampled_softmax=8192,
        eval_batch_size=128,
        checkpoint_every=2000,
        log_interval=200,
    ),  # fmt: skip
}


def preset_config(preset: str = "cpu", **overrides) -> ELMoConfig:
    """The named preset with `overrides` (ELMoConfig fields) applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown elmo preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return from_dict(ELMoConfig, {**PRESETS[preset], **overrides, "preset": preset})
