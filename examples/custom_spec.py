"""The character model of examples/own_lstm.py as a ModelSpec: `compress.run` gives it the whole
run (dense stage, passes, packed proof, hwsim, table, --resume) with no line in this repository
naming it.

    python -m compress.run --model examples.custom_spec:SPEC --preset smoke --max-paths 3

(run from the repository root, so that `examples` is importable; a module of your own works the
same from wherever it imports.) The protocol every method here follows: docs/modelspec.md.

The data is the user's own: `--data-dir` names a folder holding train.txt, valid.txt and
test.txt (plain text; spaces between characters are dropped, so Mikolov's character PTB,
`data/ptb_char` after `make data`, works as it is). The spec's `dataset` is None, so compress.run
leaves finding and checking the files to `load_data`. The model is built as plain PyTorch and converted (`lstmpack.convert`) in `build`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

import lstmpack
from common.atomic import atomic_write
from common.configs import ConfigMixin
from examples.own_lstm import CharLM, Chars, bpc, windows

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class CharConfig(ConfigMixin):
    """The model and its training at one preset; stored in config.json and every checkpoint."""

    preset: str
    seed: int = 0
    emb: int = 32
    hidden: int = 128
    layers: int = 2
    batch: int = 32
    bptt: int = 64
    lr: float = 3e-3
    epochs: int = 1  # dense epochs of `steps_per_epoch` optimizer steps
    steps_per_epoch: int = 300
    eval_chars: int = 0  # characters of valid / test scored (0: all)
    checkpoint_every: int = 100  # optimizer steps between checkpoints


PRESETS = {
    "smoke": CharConfig("smoke", hidden=24, layers=1, emb=8, batch=8, bptt=32, steps_per_epoch=12,
                        eval_chars=2_000, checkpoint_every=5),
    "cpu": CharConfig("cpu", hidden=256, layers=2, steps_per_epoch=1_000, epochs=3,
                      eval_chars=100_000),
    "paper": CharConfig("paper", hidden=512, layers=3, steps_per_epoch=5_000, epochs=10),
}  # fmt: skip


def _save(path: Path, state: dict[str, Any]) -> None:
    """torch.save, atomically: a run killed while saving keeps its previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(state, fh))


def _fit(
    model: nn.Module,
    data: Chars,
    cfg: CharConfig,
    train_dir: Path,
    *,
    steps: int,
    lr: float,
    resume: bool,
    on_step: Callable[[int], object] | None = None,
    state: Any = None,
) -> dict[str, Any]:
    """`steps` Adam steps on random windows (the same windows for a seed and step, so a resumed
    run draws what the killed one would have), checkpointing the model, the optimizer, the loop
    position and `state` (the pipeline's, for a fine-tune)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ckpt = Path(train_dir) / CHECKPOINT
    step = 0
    if resume and ckpt.is_file():
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        step = int(saved["step"])
        if state is not None:
            state.load_state_dict(saved["pipeline"])
    t0 = time.time()
    model.train()
    while step < steps:
        x, y = windows(data.train, cfg.batch, cfg.bptt, cfg.seed * 1_000_003 + step)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if on_step is not None:
            on_step(step)
        step += 1
        if step % cfg.checkpoint_every == 0 or step == steps:
            saved = {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                     "config": cfg.to_dict()}  # fmt: skip
            if state is not None:
                saved["pipeline"] = state.state_dict()
            _save(ckpt, saved)
    return {"steps": step, "train_time_s": time.time() - t0, "last_loss": loss.item()}


@dataclass(frozen=True)
class CharSpec(lstmpack.ModelSpec):
    """A plain nn.LSTM character model, converted, as compress.run sees it."""

    FINETUNE_EPOCHS: ClassVar[dict[str, int]] = {"smoke": 1, "cpu": 1, "paper": 1}
    FINETUNE_STEPS: ClassVar[dict[str, int]] = {"smoke": 8, "cpu": 300, "paper": 1_000}

    def config(self, preset: str) -> CharConfig:
        return PRESETS[preset]

    def load_data(self, cfg: CharConfig, data_dir: str | None, verify: bool = True) -> Chars:
        # no catalog dataset: the files are the user's, checked here (a ValueError is one line)
        if data_dir is None:
            raise ValueError(
                "--model examples.custom_spec:SPEC needs --data-dir: a folder holding train.txt, "
                "valid.txt and test.txt"
            )
        folder = Path(data_dir)
        missing = [s for s in ("train", "valid", "test") if not (folder / f"{s}.txt").is_file()]
        if missing:
            raise ValueError(f"--data-dir {folder} has no {missing[0]}.txt; it needs train.txt, "
                             "valid.txt and test.txt")  # fmt: skip
        # PTB char separates symbols by spaces and writes `_` between words
        texts = [(folder / f"{s}.txt").read_text().replace(" ", "") for s in ("train", "valid", "test")]  # fmt: skip
        vocab = "".join(sorted(set("".join(texts))))
        index = {c: i for i, c in enumerate(vocab)}
        train, valid, test = (torch.tensor([index[c] for c in t], dtype=torch.long) for t in texts)
        return Chars(train, valid, test, vocab)

    def build(self, cfg: CharConfig, data: Chars) -> nn.Module:
        return lstmpack.convert(
            CharLM(len(data.vocab), cfg.emb, cfg.hidden, cfg.layers), inplace=True
        )

    def steps_per_epoch(self, cfg: CharConfig, data: Chars) -> int:
        return cfg.steps_per_epoch

    def workload(self, cfg: CharConfig, data: Chars | None = None) -> dict[str, int]:
        return {"seq_len": cfg.bptt, "batch": 1}  # one window of one stream

    def train_dense(
        self,
        model: nn.Module,
        data: Chars,
        cfg: CharConfig,
        train_dir: Path,
        *,
        epochs: int,
        resume: bool,
    ) -> dict[str, Any]:
        steps = epochs * cfg.steps_per_epoch
        return _fit(model, data, cfg, train_dir, steps=steps, lr=cfg.lr, resume=resume)

    def finetune(
        self, model: nn.Module, data: Chars, cfg: CharConfig, train_dir: Path, ft: lstmpack.Finetune
    ) -> dict[str, Any]:
        # the plain fine-tune only (FEATURES is empty: compress.run refuses --recipe joint,
        # --distill, --l1, --lr-rewind and --finetune-schedule for this model)
        steps = ft.epochs * cfg.steps_per_epoch
        steps = min(steps, ft.max_steps) if ft.max_steps else steps
        lr = cfg.lr / 3 * ft.lr_scale  # below the dense rate: the weights are nearly trained
        return _fit(model, data, cfg, train_dir, steps=steps, lr=lr, resume=ft.resume,
                    on_step=ft.on_step, state=ft.state)  # fmt: skip

    def evaluate(self, model: nn.Module, data: Chars, cfg: CharConfig) -> dict[str, float]:
        def cut(split: torch.Tensor) -> torch.Tensor:
            return split[: cfg.eval_chars] if cfg.eval_chars else split

        return {"valid": bpc(model, cut(data.valid), cfg.bptt),
                "test": bpc(model, cut(data.test), cfg.bptt)}  # fmt: skip

    def calibration(
        self, model: nn.Module, data: Chars, cfg: CharConfig
    ) -> tuple[Callable, Iterable]:
        """Forward passes over 8 fixed training windows, in eval mode."""

        @torch.no_grad()
        def run_batch(i: int) -> None:
            model.eval()
            model(windows(data.train, cfg.batch, cfg.bptt, -1 - i)[0])

        return run_batch, range(8)


SPEC = CharSpec("own_char", None, "bpc")
