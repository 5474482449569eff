"""Training on tiny made data: the loss falls, resume equals an uninterrupted run; presets,
schedules, run records; a smoke run on the real corpus (slow)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nmt.data import load_data, prepare_data
from nmt.evaluation import evaluate, pair_loss
from nmt.presets import PRESETS, TranslatorConfig, get_preset
from nmt.training import build_model, learning_rate, teacher_forcing_ratio, train

SUBJ = [("I", "我"), ("You", "你"), ("He", "他"), ("She", "她"), ("We", "我们"), ("They", "他们")]
VERB = [("like", "喜欢"), ("see", "看见"), ("want", "想要")]
OBJ = [("cats", "猫"), ("dogs", "狗"), ("books", "书"), ("tea", "茶"), ("apples", "苹果")]


def made_pairs() -> list[tuple[str, str]]:
    pairs = []
    for s_en, s_zh in SUBJ:
        for v_en, v_zh in VERB:
            for o_en, o_zh in OBJ:
                pairs.append((f"{s_en} {v_en} {o_en}.", f"{s_zh}{v_zh}{o_zh}。"))
                if o_en == "tea":  # a second translation for some sources
                    pairs.append((f"{s_en} {v_en} {o_en}.", f"{s_zh}{v_zh}喝茶。"))
    return pairs


TINY = TranslatorConfig(
    preset="tiny", n_valid=6, n_test=6, max_len=16, src_vocab=280, tgt_vocab=300,
    bpe_min_frequency=1, embed=16, hidden=24, layers=1, dropout=0.1, k_src=2, k_tgt=2,
    bucket_min=1, batch_size=16, epochs=3, lr=1e-2, lr_min=1e-3, label_smoothing=0.0,
    eval_batch_size=32, beam=2, log_interval=5, checkpoint_every=5, threads=1,
)  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return prepare_data(TINY, made_pairs())


def test_training_on_made_data_lowers_the_loss(data, tmp_path):
    model = build_model(TINY, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    before = pair_loss(model, data.train.src, data.train.tgt, 64)
    steps = []
    result = train(model, data, TINY, tmp_path, callback=lambda s, m: steps.append(s),
                   progress=False)  # fmt: skip
    after = pair_loss(model, data.train.src, data.train.tgt, 64)
    assert after < before - 1.0
    assert steps == list(range(1, result["steps"] + 1))
    assert result["steps"] == 3 * result["steps_per_epoch"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert TranslatorConfig.from_dict(config) == TINY
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "log.txt").is_file()
    assert (tmp_path / "tokenizers" / "zh.json").is_file()
    ev = evaluate(model, data, TINY.replace(tune_length_alpha=True), splits=("test",))
    assert {"bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam"} <= set(ev["test"])
    assert ev["length_alpha"] in (0.6, 1.0, 1.5, 2.0)
    assert ev["length_alpha_valid_bleu"][str(ev["length_alpha"])] == max(
        ev["length_alpha_valid_bleu"].values()
    )
    assert "tok:zh" in ev["test"]["bleu_signature"]
    # the record's sample translations span the set, its first source to its last
    samples = [s["en"] for s in ev["test"]["samples"]]
    assert samples[0] == data.test.sources[0] and samples[-1] == data.test.sources[-1]
    assert len(samples) == min(8, len(data.test.sources))
    assert ev["macs_per_token"] > 0 and set(ev["spike_rates"]) >= {"encoder.0", "decoder.0"}


class Stop(Exception):
    pass


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(data, tmp_path):
    config = TINY.replace(epochs=2, tf_schedule="published", tf_full_every=2, tf_min=0.3)
    a = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    train(a, data, config, tmp_path / "a", progress=False)

    def stop_at_12(step, model):
        if step == 12:
            raise Stop

    b = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    with pytest.raises(Stop):
        train(b, data, config, tmp_path / "b", callback=stop_at_12, progress=False)
    b = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
    train(b, data, config, tmp_path / "b", resume=True, progress=False)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_config_json_roundtrip_and_unknown_keys():
    for name, cfg in PRESETS.items():
        assert TranslatorConfig.from_json(cfg.to_json()) == cfg
        assert get_preset(name) is cfg
    with pytest.raises(ValueError, match="unknown TranslatorConfig field"):
        TranslatorConfig.from_dict({"hiden": 3})
    with pytest.raises(ValueError, match="kind"):
        TranslatorConfig(kind="x")
    with pytest.raises(ValueError, match="tf_min"):
        TranslatorConfig(tf_min=0.9, tf_max=0.5)
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_paper_preset_is_the_published_configuration():
    p = PRESETS["paper"]
    assert (p.embed, p.hidden, p.layers, p.dropout) == (512, 512, 4, 0.03)
    assert (p.src_vocab, p.tgt_vocab) == (16384, 16384)
    assert (p.lr, p.lr_min, p.betas, p.weight_decay) == (5e-4, 5e-6, (0.9, 0.99), 1e-4)
    assert (p.label_smoothing, p.clip, p.tf_schedule) == (0.03, 1.0, "published")
    assert p.lr_schedule == "published"
    with pytest.raises(ValueError, match="WMT19"):
        load_data(p, None)


def test_published_teacher_forcing_schedule():
    cfg = TranslatorConfig(tf_schedule="published", tf_max=1.0, tf_min=0.5, tf_full_every=3)
    per = 10
    tf = [teacher_forcing_ratio(cfg, s // per, s, 60, per) for s in range(60)]
    assert tf[:10] == [1.0] * 10 and tf[30:40] == [1.0] * 10  # epochs 0 and 3: full forcing
    assert tf[10] == 1.0 and tf[15] == pytest.approx(0.75) and tf[20] == pytest.approx(0.5)
    assert tf[29] == pytest.approx(0.5 + 0.25 * (1 + math.cos(math.pi * 19 / 10)))
    assert tf[40] == pytest.approx(1.0)  # the counter resumes at 2T: cos(2 pi) = 1
    lin = TranslatorConfig(tf_schedule="linear", tf_max=1.0, tf_min=0.0)
    assert teacher_forcing_ratio(lin, 0, 0, 11, 11) == 1.0
    assert teacher_forcing_ratio(lin, 0, 10, 11, 11) == 0.0


def test_cosine_learning_rate_ends_at_lr_min():
    cfg = TranslatorConfig(lr=1e-3, lr_min=1e-5)
    assert learning_rate(cfg, 0, 100, 10) == pytest.approx(1e-3)
    assert learning_rate(cfg, 50, 100, 10) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(cfg, 100, 100, 10) == pytest.approx(1e-5)
    pub = cfg.replace(lr_schedule="published")  # period: 4 epochs of 10 steps, whatever the run
    assert learning_rate(pub, 20, 100, 10) == pytest.approx(1e-5)
    assert learning_rate(pub, 40, 100, 10) == pytest.approx(1e-3)


def test_prepared_data_has_no_source_in_two_splits(data):
    assert data.info["valid_sources"] == 6 and data.info["test_sources"] == 6
    test_src = set(data.test.sources)
    assert not test_src & set(data.valid.sources)
    train_src = {data.src_tok.decode(s) for s in data.train.src}
    assert not {s.lower().replace(".", " .") for s in test_src} & train_src
    assert all(len(r) >= 1 for r in data.test.references)
    assert data.info["buckets"]["padding_rate"] >= 0.0


@pytest.mark.slow
def test_smoke_preset_on_real_tatoeba(real_data_root, tmp_path):
    torch.set_num_threads(1)
    cfg = PRESETS["smoke"]
    d = load_data(cfg, real_data_root)
    assert d.info["pairs"] == 29155 and d.info["test_sources"] == cfg.eval_limit
    model = build_model(cfg, d.src_tok.vocab_size, d.tgt_tok.vocab_size)
    before = pair_loss(model, d.valid.pair_src, d.valid.pair_tgt, 64)
    train(model, d, cfg, tmp_path, progress=False)
    after = pair_loss(model, d.valid.pair_src, d.valid.pair_tgt, 64)
    assert after < before
    ev = evaluate(model, d, cfg, splits=("test",))
    assert np.isfinite(ev["test"]["bleu_greedy"])


def test_training_leaves_the_callers_thread_count_alone(data, tmp_path):
    # compress.run --threads 1 sets the process's threads; the cpu preset's threads=2 must not
    # undo it (two spinning OpenMP threads per run oversubscribed the machine's cores)
    config = TINY.replace(threads=2, max_steps=2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model(config, data.src_tok.vocab_size, data.tgt_tok.vocab_size)
        train(model, data, config, tmp_path, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
