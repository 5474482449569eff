"""The spiking surname classifier (spikingjelly's Spiking LSTM text tutorial), batched.

Task: 20,074 surnames from 18 languages (the PyTorch char-RNN tutorial's data/names), letters
folded to ascii_letters + " .,;'-" (58 symbols, as spikingjelly's tutorial), one-hot input,
one LSTM layer (hidden 256) and a linear readout of the output at each name's last letter.
Three cell kinds: "gate" (spikingjelly's gate-spiking LSTM, the tutorial's model), "output"
(snnTorch's output-spiking SLSTM, the translator's cell) and "analog" (the plain LSTM of the
same size, for comparison).

Two splits, both reported:
- "tutorial": the tutorial's own, the first 80% of each language's file trains and the rest
  tests. The files are nearly alphabetical, and 46.8% of that test set is Russian.
- "stratified": a seeded random 80/20 split within each language.

The tutorial trains one name at a time (1M steps, softmax + MSE loss, Adam 1e-4, classes
drawn uniformly) and reports 0.512 test accuracy. The `cpu` preset trains on length-bucketed
mini-batches with cross-entropy instead; the `paper` preset keeps the tutorial's recipe.

Library API (for compress.run and tests): `NamesConfig` / `preset_config`, `load_names`,
`build_model`, `train` (with a callback after every optimizer step), `evaluate`, `run` (one
whole run into runs/names/<run-id>/ with config.json and metrics.json, resumable).
CLI: `python -m nmt.names --preset cpu --split stratified --cell gate`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import string
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nmt.cells import AnalogLSTM, GateSpikingLSTM, OutputSpikingLSTM

__all__ = [
    "CELLS",
    "LETTERS",
    "PRESETS",
    "SPLITS",
    "NamesClassifier",
    "NamesConfig",
    "NamesData",
    "build_model",
    "evaluate",
    "load_names",
    "main",
    "majority_baseline",
    "preset_config",
    "run",
    "train",
]

log = logging.getLogger(__name__)

LETTERS = string.ascii_letters + " .,;'-"
CELLS = ("gate", "output", "analog")
SPLITS = ("stratified", "tutorial")
LOSSES = ("ce", "softmax_mse")
SAMPLINGS = ("shuffle", "class_uniform")
READOUTS = ("last", "mean")
SCHEDULES = ("constant", "cosine")
TUTORIAL_ACCURACY = 0.512  # spikingjelly's tutorial, tutorial split, 1M single-name steps
_INDEX = {ch: i for i, ch in enumerate(LETTERS)}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class NamesConfig:
    """Everything that decides a run; stored as config.json beside its results."""

    preset: str = "cpu"
    cell: str = "gate"  # gate | output | analog
    split: str = "stratified"  # stratified | tutorial
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0  # between layers (num_layers > 1 only)
    surrogate: str = ""  # "" = the cell's own default: erf (gate), spikingparrot (output)
    alpha: float = 2.0  # Erf / ATan sharpness
    clamp: bool = True  # gate cell: clamp c to <= 1 (spikingjelly >= 2.0)
    threshold: float = 1.0  # output cell: initial theta
    readout: str = "last"  # last: the output at each name's last letter; mean: over letters
    loss: str = "ce"  # ce | softmax_mse (the tutorial's)
    sampling: str = "shuffle"  # shuffle: epochs of length-bucketed batches; class_uniform
    batch_size: int = 64
    steps: int = 2000
    lr: float = 3e-3
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max grad norm; 0 = off
    seed: int = 0
    split_seed: int = 0
    eval_batch_size: int = 2048
    eval_every: int = 0  # steps between test evaluations logged to TensorBoard; 0 = end only
    checkpoint_every: int = 500
    threads: int = 0  # torch.set_num_threads; 0 = leave as is

    def __post_init__(self) -> None:
        choices = {
            "cell": CELLS,
            "split": SPLITS,
            "loss": LOSSES,
            "sampling": SAMPLINGS,
            "readout": READOUTS,
            "lr_schedule": SCHEDULES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not allowed; choose one of "
                    f"{', '.join(allowed)}"
                )
        if self.surrogate not in ("", "erf", "atan", "spikingparrot"):
            raise ValueError(
                f"surrogate={self.surrogate!r}; choose erf, atan, spikingparrot or '' (default)"
            )
        for name in ("hidden_size", "num_layers", "batch_size", "steps", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("eval_every", "checkpoint_every", "threads"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def cell_surrogate(self) -> str:
        if self.surrogate:
            return self.surrogate
        return "spikingparrot" if self.cell == "output" else "erf"

    def run_id(self) -> str:
        return f"{self.preset}-{self.cell}-{self.split}-seed{self.seed}"


PRESETS: dict[str, dict] = {
    # Seconds: a tiny model for tests and `compress.run --model names` smoke runs.
    "smoke": dict(hidden_size=32, steps=300, batch_size=64, lr=1e-2, checkpoint_every=0),
    # Minutes on 2 CPU cores: length-bucketed batches, cross-entropy, Adam, cosine decay.
    "cpu": dict(),
    # The tutorial's recipe: one name per step drawn class-uniformly, softmax + MSE, Adam
    # 1e-4, 1M steps (320 minutes in the tutorial).
    "paper": dict(
        batch_size=1,
        steps=1_000_000,
        lr=1e-4,
        lr_schedule="constant",
        loss="softmax_mse",
        sampling="class_uniform",
        grad_clip=0.0,
        eval_every=100_000,
        checkpoint_every=20_000,
    ),
}


def preset_config(preset: str = "cpu", **overrides) -> NamesConfig:
    """The named preset with `overrides` (NamesConfig fields) applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown names preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(NamesConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValueError(f"unknown NamesConfig field(s) {bad}; known: {sorted(fields)}")
    return NamesConfig(**{**PRESETS[preset], **overrides, "preset": preset})


# --------------------------------------------------------------------------- data


def to_ascii(name: str) -> str:
    """Strip accents (NFD, drop combining marks) and keep only LETTERS, as the tutorial."""
    return "".join(
        ch
        for ch in unicodedata.normalize("NFD", name)
        if unicodedata.category(ch) != "Mn" and ch in _INDEX
    )


@dataclass(frozen=True)
class NamesData:
    """Names with their class labels, letters as indices into LETTERS (padded with 0)."""

    names: tuple[str, ...]
    labels: np.ndarray  # int64 [N]
    codes: np.ndarray  # int64 [N, max_len]
    lengths: np.ndarray  # int64 [N]

    @classmethod
    def from_names(cls, names: list[str], labels: list[int]) -> NamesData:
        lengths = np.array([len(n) for n in names], dtype=np.int64)
        if len(names) and lengths.min() < 1:
            raise ValueError("every name needs at least one letter after ASCII folding")
        codes = np.zeros((len(names), int(lengths.max()) if len(names) else 1), dtype=np.int64)
        for row, name in enumerate(names):
            codes[row, : len(name)] = [_INDEX[ch] for ch in name]
        return cls(tuple(names), np.asarray(labels, dtype=np.int64), codes, lengths)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> NamesData:
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        width = max(int(lengths.max()), 1) if len(index) else 1
        return NamesData(
            tuple(self.names[i] for i in index),
            self.labels[index],
            self.codes[index, :width],
            lengths,
        )

    def batch(self, index: np.ndarray, device: torch.device | str = "cpu"):
        """(one-hot x [T, B, 58], lengths [B], labels [B]) for the names at `index`."""
        lengths = self.lengths[index]
        steps = int(lengths.max())
        codes = torch.from_numpy(self.codes[index, :steps].T.copy())
        x = F.one_hot(codes, len(LETTERS)).to(device=device, dtype=torch.float32)
        return x, torch.from_numpy(lengths), torch.from_numpy(self.labels[index]).to(device)


def _names_folder(data_dir: str | os.PathLike | None) -> Path:
    # A folder of <Language>.txt files is used as given (tests, other copies); anything else
    # is a data root for the dataset registry, which verifies the real files' SHA-256.
    if data_dir is not None and any(Path(data_dir).glob("*.txt")):
        return Path(data_dir)
    from common.datasets import dataset_dir

    return dataset_dir("names", data_dir)


def load_names(
    data_dir: str | os.PathLike | None, split: str = "stratified", seed: int = 0
) -> tuple[NamesData, NamesData, tuple[str, ...]]:
    """(train, test, classes). `data_dir` is the names folder itself or a data root
    (resolved, and checked against its SHA-256, by common.datasets). Classes are the file
    stems in sorted order; lines are read as the tutorial (strip, split on newlines)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; choose one of {', '.join(SPLITS)}")
    folder = _names_folder(data_dir)
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise ValueError(f"no <Language>.txt files in {folder}")
    classes = tuple(f.stem for f in files)
    rng = np.random.default_rng(seed)
    parts: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, path in enumerate(files):
        lines = path.read_text(encoding="utf-8").strip().split("\n")
        names = [to_ascii(line) for line in lines]
        cut = int(len(names) * 0.8)
        order = np.arange(len(names)) if split == "tutorial" else rng.permutation(len(names))
        for part, idx in (("train", order[:cut]), ("test", order[cut:])):
            parts[part][0].extend(names[i] for i in idx)
            parts[part][1].extend([label] * len(idx))
    train = NamesData.from_names(*parts["train"])
    test = NamesData.from_names(*parts["test"])
    return train, test, classes


def majority_baseline(train: NamesData, test: NamesData) -> float:
    """Test accuracy of always answering the most common training class."""
    top = int(np.bincount(train.labels).argmax())
    return float(np.mean(test.labels == top))


def _bucketed_epoch(data: NamesData, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Batches of similar length (little padding), in a seeded random order per epoch."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(data))
    order = order[np.argsort(data.lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _batch_stream(data: NamesData, config: NamesConfig, start_step: int) -> Iterator[np.ndarray]:
    """The index batches of steps start_step, start_step + 1, ...; a pure function of the
    seed and the step, so a resumed run sees the same data as an uninterrupted one."""
    if config.sampling == "class_uniform":
        by_class = [np.flatnonzero(data.labels == k) for k in range(int(data.labels.max()) + 1)]
        step = start_step
        while True:
            rng = np.random.default_rng([config.seed, 1, step])
            ks = rng.integers(len(by_class), size=config.batch_size)
            yield np.array([by_class[k][rng.integers(len(by_class[k]))] for k in ks])
            step += 1
    per_epoch = math.ceil(len(data) / config.batch_size)
    epoch, offset = divmod(start_step, per_epoch)
    while True:
        batches = _bucketed_epoch(data, config.batch_size, config.seed, epoch)
        yield from batches[offset:]
        offset = 0
        epoch += 1


# --------------------------------------------------------------------------- model


class NamesClassifier(nn.Module):
    """One-hot letters -> LSTM stack -> linear readout of the last letter's output."""

    def __init__(self, lstm: nn.Module, n_classes: int, readout: str = "last") -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout={readout!r}; choose one of {', '.join(READOUTS)}")
        self.lstm = lstm
        self.readout_mode = readout
        width = lstm.hidden_size * lstm.num_directions
        self.readout = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x, lengths=lengths)
        lengths = lengths.to(y.device)
        if self.readout_mode == "last":
            feats = y[lengths - 1, torch.arange(y.shape[1], device=y.device)]
        else:
            feats = y.sum(0) / lengths.unsqueeze(1).to(y.dtype)
        return self.readout(feats)

    def spike_stats(self) -> dict[str, list[int]] | None:
        return self.lstm.spike_stats() if self.lstm.spiking else None


def build_model(config: NamesConfig, n_classes: int = 18) -> NamesClassifier:
    """The classifier for `config` (seeded by config.seed)."""
    torch.manual_seed(config.seed)
    common = dict(num_layers=config.num_layers, dropout=config.dropout)
    if config.cell == "gate":
        lstm = GateSpikingLSTM(
            len(LETTERS),
            config.hidden_size,
            surrogate=config.cell_surrogate(),
            alpha=config.alpha,
            clamp=config.clamp,
            **common,
        )
    elif config.cell == "output":
        lstm = OutputSpikingLSTM(
            len(LETTERS),
            config.hidden_size,
            surrogate=config.cell_surrogate(),
            alpha=config.alpha,
            threshold=config.threshold,
            **common,
        )
    else:
        lstm = AnalogLSTM(len(LETTERS), config.hidden_size, **common)
    return NamesClassifier(lstm, n_classes, config.readout)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- train / evaluate


def _loss(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    target = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return F.mse_loss(torch.softmax(logits, dim=1), target)


@torch.no_grad()
def evaluate(
    model: NamesClassifier,
    data: NamesData,
    batch_size: int = 2048,
    device: torch.device | str = "cpu",
) -> dict:
    """accuracy, balanced_accuracy (mean recall over classes present), loss (cross-entropy),
    spike_rate (spikes per neuron per letter over all layers; None for the analog cell) and
    the spike counts it comes from."""
    was_training = model.training
    model.eval()
    preds, losses = [], 0.0
    spikes = steps = None
    order = np.argsort(data.lengths, kind="stable")  # little padding, same result
    for i in range(0, len(data), batch_size):
        idx = order[i : i + batch_size]
        x, lengths, labels = data.batch(idx, device)
        logits = model(x, lengths)
        losses += float(F.cross_entropy(logits, labels, reduction="sum"))
        preds.append((idx, logits.argmax(1).cpu().numpy()))
        stats = model.spike_stats()
        if stats is not None:
            s, n = np.array(stats["spikes"]), np.array(stats["neuron_steps"])
            spikes = s if spikes is None else spikes + s
            steps = n if steps is None else steps + n
    model.train(was_training)
    pred = np.empty(len(data), dtype=np.int64)
    for idx, p in preds:
        pred[idx] = p
    correct = pred == data.labels
    recalls = [correct[data.labels == k].mean() for k in np.unique(data.labels)]
    out = {
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "loss": losses / max(len(data), 1),
        "n": len(data),
        "spike_rate": None,
        "layer_spike_rates": None,
        "spikes": None,
        "neuron_steps": None,
    }
    if spikes is not None:
        out.update(
            spike_rate=float(spikes.sum() / steps.sum()),
            layer_spike_rates=[float(a / b) for a, b in zip(spikes, steps, strict=True)],
            spikes=[int(v) for v in spikes],
            neuron_steps=[int(v) for v in steps],
        )
    return out


def _lr_at(config: NamesConfig, step: int) -> float:
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


StepCallback = Callable[[int, nn.Module, float], None]


def train(
    model: NamesClassifier,
    data: tuple[NamesData, NamesData, tuple[str, ...]],
    config: NamesConfig,
    callback: StepCallback | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict:
    """Train `model` for config.steps optimizer steps on data[0] with Adam.

    `callback(step, model, loss)` runs after every optimizer step (step counts from 1), e.g.
    a compression pipeline's mask update. With `run_dir`, a checkpoint (model, optimizer,
    step, RNG) is written atomically every config.checkpoint_every steps and at the end, a
    run resumes from it, and scalars go to TensorBoard there. Returns
    {"train_time_s", "steps", "final_loss", "resumed_from"}.
    """
    train_data, test_data, _ = data
    if config.threads:
        torch.set_num_threads(config.threads)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, elapsed = 0, 0.0
    ckpt_path = Path(run_dir) / "checkpoint.pt" if run_dir is not None else None
    if ckpt_path is not None and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ckpt.get("config") != asdict(config):
            raise ValueError(
                f"{ckpt_path} was written by a different configuration; remove it or use "
                "another run directory"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        start, elapsed = int(ckpt["step"]), float(ckpt["train_time_s"])
        log.info("resuming %s at step %d", run_dir, start)
    else:
        torch.manual_seed(config.seed + 1)  # dropout stream
    writer = None
    if run_dir is not None and start < config.steps:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=config.run_id(), leave=False)

    def save(step: int, spent: float) -> None:
        if ckpt_path is None:
            return
        state = {
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "train_time_s": spent,
        }
        _atomic_torch_save(state, ckpt_path)

    model.train()
    stream = _batch_stream(train_data, config, start)
    loss_value = float("nan")
    t0 = time.perf_counter()
    step = start
    for step in range(start + 1, config.steps + 1):
        idx = next(stream)
        x, lengths, labels = train_data.batch(idx, device)
        for group in opt.param_groups:
            group["lr"] = _lr_at(config, step - 1)
        opt.zero_grad(set_to_none=True)
        loss = _loss(model(x, lengths), labels, config.loss)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        loss_value = float(loss.detach())
        if callback is not None:
            callback(step, model, loss_value)
        if writer is not None and (step % 50 == 0 or step == config.steps):
            writer.add_scalar("train/loss", loss_value, step)
            writer.add_scalar("train/lr", _lr_at(config, step - 1), step)
        if config.eval_every and step % config.eval_every == 0 and step < config.steps:
            ev = evaluate(model, test_data, config.eval_batch_size, device)
            model.train()
            if writer is not None:
                writer.add_scalar("test/accuracy", ev["accuracy"], step)
                if ev["spike_rate"] is not None:
                    writer.add_scalar("test/spike_rate", ev["spike_rate"], step)
            log.info("step %d test accuracy %.4f", step, ev["accuracy"])
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            save(step, elapsed + time.perf_counter() - t0)
        if bar is not None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss_value:.3f}")
    elapsed += time.perf_counter() - t0
    if step > start:
        save(step, elapsed)
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    return {
        "train_time_s": elapsed,
        "steps": config.steps,
        "final_loss": loss_value,
        "resumed_from": start,
    }


def run(
    config: NamesConfig,
    data_dir: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs",
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[dict, Path]:
    """Load the data, train (resuming if runs/names/<run-id>/ holds a checkpoint), evaluate,
    and write config.json and metrics.json there. Returns (metrics, run directory)."""
    run_dir = Path(runs_dir) / "names" / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_json(run_dir / "config.json", asdict(config))
    data = load_names(data_dir, config.split, config.split_seed)
    train_data, test_data, classes = data
    model = build_model(config, len(classes))
    info = train(model, data, config, run_dir=run_dir, device=device, progress=progress)
    test_eval = evaluate(model, test_data, config.eval_batch_size, device)
    train_eval = evaluate(model, train_data, config.eval_batch_size, device)
    metrics = {
        "model": "names",
        "cell": config.cell,
        "split": config.split,
        "test_accuracy": test_eval["accuracy"],
        "test_balanced_accuracy": test_eval["balanced_accuracy"],
        "test_loss": test_eval["loss"],
        "train_accuracy": train_eval["accuracy"],
        "majority_baseline": majority_baseline(train_data, test_data),
        "tutorial_reference_accuracy": TUTORIAL_ACCURACY,
        "spike_rate": test_eval["spike_rate"],
        "layer_spike_rates": test_eval["layer_spike_rates"],
        "test_spikes": test_eval["spikes"],
        "test_neuron_steps": test_eval["neuron_steps"],
        "params": count_params(model),
        "train_time_s": info["train_time_s"],
        "steps": info["steps"],
        "final_train_loss": info["final_loss"],
        "n_train": len(train_data),
        "n_test": len(test_data),
        "classes": list(classes),
        "torch_threads": torch.get_num_threads(),
    }
    _atomic_json(run_dir / "metrics.json", metrics)
    with open(run_dir / "log.txt", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": time.time(), **metrics}) + "\n")
    return metrics, run_dir


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nmt.names",
        description="Train and evaluate the (spiking) LSTM surname classifier.",
    )
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--split", default="stratified", choices=SPLITS)
    p.add_argument("--cell", default="gate", choices=CELLS)
    p.add_argument("--data-dir", default=None, help="data root or the names folder itself")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--hidden-size", type=int, default=None)
    p.add_argument("--surrogate", default=None, choices=["erf", "atan", "spikingparrot"])
    p.add_argument("--readout", default=None, choices=READOUTS)
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: default)")
    p.add_argument("--no-clamp", action="store_true", help="gate cell: pre-2.0 unclamped c")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = {
        k: v
        for k, v in dict(
            split=args.split,
            cell=args.cell,
            seed=args.seed,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            hidden_size=args.hidden_size,
            surrogate=args.surrogate,
            readout=args.readout,
            threads=args.threads,
        ).items()
        if v is not None
    }
    if args.no_clamp:
        overrides["clamp"] = False
    try:
        config = preset_config(args.preset, **overrides)
        metrics, run_dir = run(config, args.data_dir, args.runs_dir, progress=not args.no_progress)
    except ValueError as err:  # includes DatasetError: a one-line message
        print(f"nmt.names: {err}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in metrics.items() if k not in ("classes", "test_neuron_steps")}
    print(json.dumps(shown, indent=1))
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
