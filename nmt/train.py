"""Train and evaluate the spiking translator: data preparation, the training loop, BLEU.

Public API (used by `compress.run --model nmt`):

    config = nmt.presets.PRESETS["cpu"]
    data = load_data(config, data_dir)              # splits + tokenizers
    model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    train(model, data, config, run_dir, callback=None, resume=False)
    metrics = evaluate(model, data, config)         # BLEU greedy/beam, chrF, spikes, MACs/ACs

`python -m nmt.train --preset cpu [--run-dir D] [--data-dir D] [--resume] [--set key=value]`
trains, evaluates and writes config.json / metrics.json / log.txt / TensorBoard events /
checkpoint.pt / tokenizers to the run directory; an interrupted run resumes from its last
checkpoint with `--resume` and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.runtime import configure_cpu
from nmt.bleu import corpus_bleu, corpus_chrf
from nmt.buckets import Buckets, BucketStats, build_buckets, eval_batches, pad_batch, train_batches
from nmt.corpus import Pair, group_references, read_tatoeba, read_wmt_parquet, split_by_source
from nmt.decode import beam_search, greedy_decode
from nmt.presets import PRESETS, TranslatorConfig
from nmt.tokenize import PAD, BPETokenizer, segment_zh, train_tokenizer
from nmt.translator import Translator

__all__ = [
    "EvalSet",
    "NMTData",
    "TrainSet",
    "build_model",
    "calibration_batches",
    "evaluate",
    "learning_rate",
    "load_data",
    "prepare_data",
    "steps_per_epoch_of",
    "teacher_forcing_ratio",
    "train",
    "tune_length_alpha",
    "translate",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


# ----------------------------------------------------------------------------- data


@dataclass
class TrainSet:
    src: list[list[int]]
    tgt: list[list[int]]
    src_len: np.ndarray
    tgt_len: np.ndarray
    buckets: Buckets


@dataclass
class EvalSet:
    """Distinct sources with all their references, and the pairs for teacher-forced loss."""

    sources: list[str]
    references: list[list[str]]
    src_ids: list[list[int]]
    pair_src: list[list[int]]
    pair_tgt: list[list[int]]


@dataclass
class NMTData:
    src_tok: BPETokenizer
    tgt_tok: BPETokenizer
    train: TrainSet
    valid: EvalSet
    test: EvalSet
    wmt: EvalSet | None = None
    info: dict = field(default_factory=dict)


def _subset(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random `limit`-subset of range(n) (all when limit is 0)."""
    if not limit or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def _eval_set(
    pairs: Sequence[Pair], src_tok: BPETokenizer, tgt_tok: BPETokenizer, limit: int, seed: int
) -> EvalSet:
    sources, refs = group_references(pairs)
    keep = _subset(len(sources), limit, seed)
    sources = [sources[i] for i in keep]
    refs = [refs[i] for i in keep]
    kept = set(sources)
    pairs = [p for p in pairs if p[0] in kept]
    return EvalSet(
        sources=sources,
        references=refs,
        src_ids=src_tok.encode_batch(sources),
        pair_src=src_tok.encode_batch([p[0] for p in pairs]),
        pair_tgt=tgt_tok.encode_batch([p[1] for p in pairs]),
    )


def prepare_data(
    config: TranslatorConfig, pairs: Sequence[Pair], wmt_pairs: Sequence[Pair] | None = None
) -> NMTData:
    """Split `pairs` by source, train both tokenizers on the training split, encode, bucket."""
    corpus = split_by_source(pairs, config.n_valid, config.n_test, config.split_seed)
    train_pairs = [corpus.train[i] for i in _subset(len(corpus.train), config.train_limit,
                                                     config.split_seed)]  # fmt: skip
    if not train_pairs:
        raise ValueError("the training split is empty")
    en = [p[0] for p in train_pairs]
    zh = segment_zh([p[1] for p in train_pairs])
    src_tok = train_tokenizer(en, "en", config.src_vocab, config.bpe_min_frequency)
    tgt_tok = train_tokenizer(zh, "zh", config.tgt_vocab, config.bpe_min_frequency, segmented=True)
    src_all = src_tok.encode_batch(en)
    tgt_all = tgt_tok.encode_batch(zh, segmented=True)
    keep = [
        i for i in range(len(src_all))
        if len(src_all[i]) <= config.max_len and len(tgt_all[i]) <= config.max_len
    ]  # fmt: skip
    src = [src_all[i] for i in keep]
    tgt = [tgt_all[i] for i in keep]
    src_len = np.array([len(s) for s in src], dtype=np.int64)
    tgt_len = np.array([len(t) for t in tgt], dtype=np.int64)
    buckets = build_buckets(
        src_len, tgt_len, config.k_src, config.k_tgt, config.bucket_min, config.bucket_max
    )
    valid = _eval_set(corpus.valid, src_tok, tgt_tok, config.eval_limit, config.split_seed + 1)
    test = _eval_set(corpus.test, src_tok, tgt_tok, config.eval_limit, config.split_seed + 2)
    wmt = (
        _eval_set(wmt_pairs, src_tok, tgt_tok, config.wmt_limit, config.split_seed + 3)
        if wmt_pairs
        else None
    )
    info = {
        "pairs": len(pairs),
        "train_pairs": len(train_pairs),
        "train_pairs_kept": len(src),
        "train_pairs_too_long": len(train_pairs) - len(src),
        "valid_pairs": len(corpus.valid),
        "test_pairs": len(corpus.test),
        "valid_sources": len(valid.sources),
        "test_sources": len(test.sources),
        "wmt_sources": len(wmt.sources) if wmt else 0,
        "src_vocab": src_tok.vocab_size,
        "tgt_vocab": tgt_tok.vocab_size,
        "buckets": _stats_dict(buckets.stats),
    }
    return NMTData(src_tok, tgt_tok, TrainSet(src, tgt, src_len, tgt_len, buckets), valid, test,
                   wmt, info)  # fmt: skip


def _stats_dict(stats: BucketStats) -> dict:
    d = dict(stats.__dict__)
    d["src_edges"] = list(stats.src_edges)
    d["tgt_edges"] = list(stats.tgt_edges)
    return d


def load_data(
    config: TranslatorConfig, data_dir: str | os.PathLike | None = None, verify: bool = True
) -> NMTData:
    """The corpus of `config` from the dataset registry, prepared (see `prepare_data`).
    `verify=False` skips the SHA-256 check (for made or partial copies)."""
    from common.datasets import dataset_dir

    if config.corpus == "wmt19":
        raise ValueError(
            "corpus 'wmt19' needs the WMT19 zh-en training set, which the dataset registry does "
            "not hold (only its validation set, 'wmt_zh_en_valid'); use --set corpus=tatoeba to "
            "train these sizes on Tatoeba"
        )
    pairs = read_tatoeba(dataset_dir("cmn_eng", data_dir, verify=verify) / "cmn.txt")
    wmt = None
    if config.eval_wmt:
        folder = dataset_dir("wmt_zh_en_valid", data_dir, verify=verify)
        wmt = read_wmt_parquet(folder / "validation-00000-of-00001.parquet")
    return prepare_data(config, pairs, wmt)


def _tensors(
    src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]] | None, index: np.ndarray, device
):
    s = [src[i] for i in index]
    src_t = torch.from_numpy(pad_batch(s, PAD)).to(device)
    src_len = torch.tensor([len(x) for x in s], dtype=torch.long, device=device)
    if tgt is None:
        return src_t, src_len
    t = torch.from_numpy(pad_batch([tgt[i] for i in index], PAD)).to(device)
    return src_t, src_len, t[:, :-1], t[:, 1:]


# ----------------------------------------------------------------------------- model


def build_model(config: TranslatorConfig, src_vocab: int, tgt_vocab: int) -> Translator:
    """A freshly initialised translator (seeded by `config.seed`)."""
    torch.manual_seed(config.seed)
    return Translator(
        src_vocab,
        tgt_vocab,
        embed=config.embed,
        hidden=config.hidden,
        layers=config.layers,
        dropout=config.dropout,
        kind=config.kind,
        faithful=config.faithful,
        surrogate=config.surrogate or None,
        threshold=config.threshold,
        stack_memory=config.stack_memory,
    )


# ----------------------------------------------------------------------------- schedules


def learning_rate(
    config: TranslatorConfig, step: int, total_steps: int, steps_per_epoch: int
) -> float:
    """The learning rate at optimizer step `step` (0-based).

    - cosine: one half cosine from `lr` to `lr_min` over the whole run.
    - published (SpikingParrot's train.py): torch's CosineAnnealingLR with T_max = two epochs
      of steps, stepped every batch and never stopped, so over 12 epochs it goes down to
      `lr_min` and back up three times."""
    if config.lr_schedule == "published":
        frac = step / max(1, 2 * steps_per_epoch)
    else:
        span = max(1, total_steps)
        frac = min(step, span) / span
    return config.lr_min + (config.lr - config.lr_min) * (1 + math.cos(math.pi * frac)) / 2


def teacher_forcing_ratio(
    config: TranslatorConfig, epoch: int, step: int, total_steps: int, steps_per_epoch: int
) -> float:
    """The teacher-forcing probability at global optimizer step `step` (0-based) of `epoch`.

    - constant: tf_max.
    - linear: tf_max -> tf_min over the run.
    - published (SpikingParrot's train.py): epochs 0, n, 2n, ... (n = tf_full_every) use full
      teacher forcing; the other epochs follow tf_min + (tf_max - tf_min)(1 + cos(pi k / T))/2,
      where k counts the steps taken in those epochs only and T is one epoch's steps. The
      cosine is not clamped at T, so it climbs back to tf_max over the second such epoch.
    """
    if config.tf_schedule == "constant":
        return config.tf_max
    if config.tf_schedule == "linear":
        frac = step / max(1, total_steps - 1)
        return config.tf_max + (config.tf_min - config.tf_max) * min(frac, 1.0)
    n = config.tf_full_every
    if epoch % n == 0:
        return 1.0
    done_epochs = epoch - (epoch // n + 1)  # earlier epochs that were not full-TF ones
    k = done_epochs * steps_per_epoch + (step - epoch * steps_per_epoch)
    cos = math.cos(math.pi * k / max(1, steps_per_epoch))
    return config.tf_min + (config.tf_max - config.tf_min) * (1 + cos) / 2


# ----------------------------------------------------------------------------- I/O helpers


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_torch_save(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, obj) -> None:
    """JSON written atomically (temp file in the same folder + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _file_logger(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("nmt").addHandler(handler)
    logging.getLogger("nmt").setLevel(logging.INFO)
    return handler


# ----------------------------------------------------------------------------- training


def steps_per_epoch_of(config: TranslatorConfig, data: NMTData) -> int:
    """Optimizer steps in one epoch (the same for every epoch)."""
    ts = data.train
    batches = train_batches(ts.buckets, ts.src_len, ts.tgt_len, config.batch_size,
                            config.batch_tokens, config.seed, 0)  # fmt: skip
    return len(batches)


def calibration_batches(data: NMTData, config: TranslatorConfig, n: int, device="cpu"):
    """The first `n` training batches of epoch 0 as (src, src_len, tgt_in) tensors, for
    activation-range calibration: run them with `model(*batch)`."""
    ts = data.train
    batches = train_batches(ts.buckets, ts.src_len, ts.tgt_len, config.batch_size,
                            config.batch_tokens, config.seed, 0)[:n]  # fmt: skip
    return [_tensors(ts.src, ts.tgt, idx, device)[:3] for idx in batches]


def _loss_fn(config: TranslatorConfig) -> nn.Module:
    return nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=config.label_smoothing)


@torch.no_grad()
def pair_loss(
    model: Translator, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]],
    batch_size: int, device="cpu",
) -> float:  # fmt: skip
    """Teacher-forced cross-entropy per target token (no label smoothing), in nats."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    lengths = np.array([len(s) for s in src])
    for idx in eval_batches(lengths, batch_size):
        s, sl, ti, to = _tensors(src, tgt, idx, device)
        logits = model(s, sl, ti)
        total += float(
            nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), to.reshape(-1), ignore_index=PAD,
                reduction="sum",
            )
        )  # fmt: skip
        count += int((to != PAD).sum())
    model.train(was)
    return total / max(count, 1)


def train(
    model: Translator,
    data: NMTData,
    config: TranslatorConfig,
    run_dir: str | os.PathLike,
    callback: Callable[[int, Translator], None] | None = None,
    resume: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    *,
    epochs: int | None = None,
    extra_state=None,
    lr_scale: float = 1.0,
) -> dict:
    """Train `model` in place; returns the training metrics (also in run_dir/train.json).

    `callback(step, model)` runs after every optimizer step (the compression passes hook in
    there). Checkpoints go to run_dir/checkpoint.pt every `checkpoint_every` steps, at every
    epoch end and on KeyboardInterrupt; `resume=True` continues from it (same batches, same
    random draws, so the result equals an uninterrupted run). `epochs` overrides
    `config.epochs` (fine-tuning), `lr_scale` scales the whole learning-rate schedule, and
    `extra_state` (anything with state_dict / load_state_dict, e.g. the compression masks) is
    saved in and restored from the checkpoint."""
    from tqdm import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    handler = _file_logger(run_dir)
    writer = None
    try:
        if not (run_dir / "config.json").exists():  # a caller's own record (compress.run) wins
            write_json(run_dir / "config.json", config.to_dict())
        data.src_tok.save(run_dir / "tokenizers" / "en.json")
        data.tgt_tok.save(run_dir / "tokenizers" / "zh.json")
        model.to(device)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        ts = data.train
        steps_per_epoch = steps_per_epoch_of(config, data)
        n_epochs = config.epochs if epochs is None else epochs
        if n_epochs < 0 or lr_scale <= 0:
            raise ValueError(f"need epochs >= 0 and lr_scale > 0, got {n_epochs} and {lr_scale}")
        total_steps = n_epochs * steps_per_epoch
        if config.max_steps:
            total_steps = min(total_steps, config.max_steps)
        state = {"epoch": 0, "batch": 0, "step": 0, "train_time_s": 0.0, "tokens": 0}
        ckpt_path = run_dir / CHECKPOINT
        if resume and ckpt_path.is_file():
            ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            torch.set_rng_state(ckpt["torch_rng"])
            if extra_state is not None and ckpt.get("extra") is not None:
                extra_state.load_state_dict(ckpt["extra"])
            if ckpt.get("config") != config.to_dict():
                log.warning("resuming with a config that differs from the checkpoint's")
            state = ckpt["state"]
            log.info("resumed from %s at step %d (epoch %d)", ckpt_path, state["step"],
                     state["epoch"])  # fmt: skip
        elif resume:
            log.info("no checkpoint in %s: starting from scratch", run_dir)

        def save() -> None:
            _atomic_torch_save(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "state": dict(state),
                 "config": config.to_dict(),
                 "extra": None if extra_state is None else extra_state.state_dict()},
                ckpt_path,
            )  # fmt: skip

        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir), purge_step=state["step"] or None)
        loss_fn = _loss_fn(config)
        model.train()
        log.info("training %s: %d params, %d steps/epoch, %d steps", config.preset,
                 sum(p.numel() for p in model.parameters()), steps_per_epoch, total_steps)  # fmt: skip
        bar = tqdm(total=total_steps, initial=state["step"], disable=not progress, unit="step",
                   dynamic_ncols=True)  # fmt: skip
        recent: list[float] = []
        try:
            while state["step"] < total_steps and state["epoch"] < n_epochs:
                epoch = state["epoch"]
                batches = train_batches(ts.buckets, ts.src_len, ts.tgt_len, config.batch_size,
                                        config.batch_tokens, config.seed, epoch)  # fmt: skip
                while state["batch"] < len(batches) and state["step"] < total_steps:
                    t0 = time.perf_counter()
                    step = state["step"]
                    lr = lr_scale * learning_rate(config, step, total_steps, steps_per_epoch)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    tf = teacher_forcing_ratio(config, epoch, step, total_steps, steps_per_epoch)
                    src, src_len, tgt_in, tgt_out = _tensors(ts.src, ts.tgt,
                                                             batches[state["batch"]], device)  # fmt: skip
                    rng = np.random.default_rng([config.seed, 7, step])
                    logits = model(src, src_len, tgt_in, teacher_forcing=tf, rng=rng)
                    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip) \
                        if config.clip > 0 else torch.tensor(0.0)  # fmt: skip
                    optimizer.step()
                    state["step"] += 1
                    state["batch"] += 1
                    tokens = int((tgt_out != PAD).sum()) + int(src_len.sum())
                    state["tokens"] += tokens
                    state["train_time_s"] += time.perf_counter() - t0
                    recent.append(float(loss.detach()))
                    if callback is not None:
                        callback(state["step"], model)
                    bar.update(1)
                    if state["step"] % config.log_interval == 0:
                        mean = sum(recent) / len(recent)
                        recent.clear()
                        writer.add_scalar("train/loss", mean, state["step"])
                        writer.add_scalar("train/lr", lr, state["step"])
                        writer.add_scalar("train/teacher_forcing", tf, state["step"])
                        writer.add_scalar("train/grad_norm", float(grad_norm), state["step"])
                        bar.set_postfix(loss=f"{mean:.3f}", lr=f"{lr:.2e}", tf=f"{tf:.2f}")
                        log.info("step %d epoch %d loss %.4f lr %.3e tf %.3f", state["step"],
                                 epoch, mean, lr, tf)  # fmt: skip
                    if state["step"] % config.checkpoint_every == 0:
                        save()
                if state["batch"] >= len(batches):
                    state["epoch"] += 1
                    state["batch"] = 0
                    vloss = pair_loss(model, data.valid.pair_src, data.valid.pair_tgt,
                                      config.eval_batch_size, device)  # fmt: skip
                    writer.add_scalar("valid/loss", vloss, state["step"])
                    state["valid_loss"] = vloss
                    log.info("epoch %d done: valid loss %.4f (ppl %.2f)", state["epoch"], vloss,
                             math.exp(vloss))  # fmt: skip
                    save()
        except KeyboardInterrupt:
            save()
            raise
        finally:
            bar.close()
        save()
        result = {
            "steps": state["step"],
            "epochs_done": state["epoch"] + state["batch"] / max(1, steps_per_epoch),
            "steps_per_epoch": steps_per_epoch,
            "train_time_s": state["train_time_s"],
            "tokens_per_s": state["tokens"] / max(state["train_time_s"], 1e-9),
            "params": sum(p.numel() for p in model.parameters()),
            "valid_loss": state.get("valid_loss"),
        }
        write_json(run_dir / "train.json", result)
        return result
    finally:
        if writer is not None:
            writer.close()
        logging.getLogger("nmt").removeHandler(handler)
        handler.close()


# ----------------------------------------------------------------------------- evaluation


def _max_len(config: TranslatorConfig, src_len: torch.Tensor) -> int:
    return int(config.max_decode_ratio * int(src_len.max()) + config.max_decode_extra)


@torch.no_grad()
def translate(
    model: Translator, data: NMTData, sentences: Sequence[str], config: TranslatorConfig,
    beam: int = 1, device="cpu",
) -> list[str]:  # fmt: skip
    """Chinese translations of English `sentences` (greedy when beam == 1)."""
    ids = data.src_tok.encode_batch(list(sentences))
    return _decode_ids(model, data, ids, config, beam, device)


def _decode_ids(model, data, ids, config, beam, device) -> list[str]:
    was = model.training
    model.eval()
    out: list[str | None] = [None] * len(ids)
    for idx in eval_batches(np.array([len(s) for s in ids]), config.eval_batch_size):
        src, src_len = _tensors(ids, None, idx, device)
        n = _max_len(config, src_len)
        if beam == 1:
            hyps = greedy_decode(model, src, src_len, n)
        else:
            hyps = beam_search(model, src, src_len, n, beam=beam, alpha=config.length_alpha)
        for i, h in zip(idx, hyps):
            out[i] = data.tgt_tok.decode(h)
    model.train(was)
    return out  # type: ignore[return-value]


def score_set(
    model: Translator, data: NMTData, es: EvalSet, config: TranslatorConfig, device="cpu",
    beam: bool = True, samples: int = 8,
) -> dict:  # fmt: skip
    """Greedy (and beam) BLEU/chrF of one evaluation set, its loss and a few samples."""
    res: dict = {"sources": len(es.sources)}
    t0 = time.perf_counter()
    greedy = _decode_ids(model, data, es.src_ids, config, 1, device)
    res["decode_greedy_s"] = time.perf_counter() - t0
    b = corpus_bleu(greedy, es.references)
    c = corpus_chrf(greedy, es.references)
    res.update(bleu_greedy=b.score, chrf_greedy=c.score, bleu_signature=b.signature,
               chrf_signature=c.signature, bleu_greedy_text=b.text)  # fmt: skip
    beamed = None
    if beam and config.beam > 1:
        t0 = time.perf_counter()
        beamed = _decode_ids(model, data, es.src_ids, config, config.beam, device)
        res["decode_beam_s"] = time.perf_counter() - t0
        b = corpus_bleu(beamed, es.references)
        c = corpus_chrf(beamed, es.references)
        res.update(bleu_beam=b.score, chrf_beam=c.score, bleu_beam_text=b.text)
    res["loss"] = pair_loss(model, es.pair_src, es.pair_tgt, config.eval_batch_size, device)
    # spread over the set: Tatoeba lists short sentences first, so its head is all one-liners
    picks = np.unique(np.linspace(0, len(es.sources) - 1, min(samples, len(es.sources))).round())
    res["samples"] = [
        {"en": es.sources[i], "refs": es.references[i], "greedy": greedy[i],
         **({"beam": beamed[i]} if beamed else {})}
        for i in picks.astype(int).tolist()
    ]  # fmt: skip
    return res


@torch.no_grad()
def activity(model: Translator, es: EvalSet, config: TranslatorConfig, device="cpu") -> dict:
    """Spike rate per layer and MACs / ACs per target token, teacher-forced over `es`'s pairs."""
    was = model.training
    model.eval()
    model.set_tracking(True)
    try:
        pair_loss(model, es.pair_src, es.pair_tgt, config.eval_batch_size, device)
        counts = model.operation_counts()
        rates = model.spike_rates()
    finally:
        model.set_tracking(False)
        model.train(was)
    per = max(counts["target_positions"], 1.0)
    return {
        "spike_rates": rates,
        "macs_per_token": counts["macs"] / per,
        "acs_per_token": counts["acs"] / per,
        "target_tokens": int(counts["target_positions"]),
    }


ALPHA_GRID = (0.6, 1.0, 1.5, 2.0)


def tune_length_alpha(
    model: Translator, data: NMTData, config: TranslatorConfig, device="cpu",
    grid: Sequence[float] = ALPHA_GRID,
) -> tuple[float, dict[str, float]]:  # fmt: skip
    """The length-penalty alpha of `grid` with the best beam BLEU on the valid split (never
    the test split), and the BLEU of each."""
    scores = {}
    for alpha in grid:
        hyps = _decode_ids(model, data, data.valid.src_ids, config.replace(length_alpha=alpha),
                           config.beam, device)  # fmt: skip
        scores[str(alpha)] = corpus_bleu(hyps, data.valid.references).score
    best = max(grid, key=lambda a: (scores[str(a)], -a))
    return float(best), scores


def evaluate(
    model: Translator, data: NMTData, config: TranslatorConfig, device="cpu",
    splits: Sequence[str] = ("valid", "test"),
) -> dict:  # fmt: skip
    """BLEU (greedy, beam), chrF, loss per split; spike rates and MACs/ACs on the test split.
    With `config.tune_length_alpha` the beam's length penalty is first chosen on valid."""
    model.to(device)
    out: dict = {}
    if config.tune_length_alpha and config.beam > 1:
        alpha, grid = tune_length_alpha(model, data, config, device)
        config = config.replace(length_alpha=alpha)
        out["length_alpha"] = alpha
        out["length_alpha_valid_bleu"] = grid
    for name in splits:
        es = getattr(data, name)
        if es is None:
            continue
        out[name] = score_set(model, data, es, config, device, beam=name != "wmt")
    out.update(activity(model, data.test, config, device))
    test = out.get("test", {})
    out["quality"] = {
        "metric": "bleu",
        "higher_is_better": True,
        "valid": out.get("valid", {}).get("bleu_beam", out.get("valid", {}).get("bleu_greedy")),
        "test": test.get("bleu_beam", test.get("bleu_greedy")),
    }
    return out


# ----------------------------------------------------------------------------- CLI


def _parse_set(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nmt.train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="smoke", choices=sorted(PRESETS))
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--eval-splits", default="valid,test,wmt")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    configure_cpu()
    run_dir = None
    try:
        config = PRESETS[args.preset].replace(**_parse_set(args.set))
        run_dir = Path(args.run_dir or f"runs/nmt/{config.preset}-{config.kind}-s{config.seed}")
        t0 = time.perf_counter()
        data = load_data(config, args.data_dir)
        prep_s = time.perf_counter() - t0
        print(f"data: {json.dumps(data.info)} ({prep_s:.1f} s)")
        model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config.to_dict())
        write_json(run_dir / "metrics.json", {"status": "running", "error": None})
        tr = train(model, data, config, run_dir, resume=args.resume, device=args.device,
                   progress=not args.no_progress)  # fmt: skip
        t0 = time.perf_counter()
        ev = evaluate(model, data, config, args.device, splits=args.eval_splits.split(","))
        ev_s = time.perf_counter() - t0
    except Exception as e:
        if run_dir is not None and run_dir.is_dir():
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            write_json(run_dir / "metrics.json", {"status": "failed", "error": msg})
        if not isinstance(e, ValueError):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    metrics = {"status": "finished", "error": None, "data": data.info, "prep_time_s": prep_s,
               "eval_time_s": ev_s, **tr, **ev}  # fmt: skip
    metrics["wall_time_s"] = prep_s + tr["train_time_s"] + ev_s
    write_json(run_dir / "metrics.json", metrics)
    for name in ("valid", "test", "wmt"):
        if name in ev:
            r = ev[name]
            print(f"{name}: greedy {r['bleu_greedy_text']}")
            if "bleu_beam_text" in r:
                print(f"{name}: beam{config.beam} {r['bleu_beam_text']}")
            print(
                f"{name}: chrF greedy {r['chrf_greedy']:.2f} beam {r.get('chrf_beam', float('nan')):.2f}"
            )
    if "length_alpha" in ev:
        print(f"length penalty alpha {ev['length_alpha']} (valid beam BLEU by alpha: "
              f"{json.dumps(ev['length_alpha_valid_bleu'])})")  # fmt: skip
    print(f"spike rates: {json.dumps(ev['spike_rates'])}")
    print(f"MACs/token {ev['macs_per_token']:.4g}  ACs/token {ev['acs_per_token']:.4g}")
    print(f"train time {tr['train_time_s']:.1f} s, {tr['steps']} steps, run dir {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
