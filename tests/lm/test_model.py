from __future__ import annotations

import json

import pytest
import torch

from lm.config import LMConfig
from lm.model import AWDLSTM, build_model, count_parameters
from lm.presets import PAPER, PRESETS, get_preset
from lm.regularizers import (
    LockedDropout,
    activation_regularization,
    embedding_dropout,
    temporal_activation_regularization,
)
from lstmpack.registry import get_spec


@pytest.mark.parametrize(
    ("model", "vocab", "expected"), [("ptbc", 50, 13_787_650), ("ptbw", 10_000, 24_221_600)]
)
def test_paper_presets_have_the_published_parameter_counts(
    model: str, vocab: int, expected: int
) -> None:
    with torch.device("meta"):
        net = build_model(PAPER[model], vocab)
    assert count_parameters(net) == expected


def test_enwik8_paper_preset_is_about_47m_parameters() -> None:
    with torch.device("meta"):
        net = build_model(PAPER["enwik8"], 205)  # the published byte vocabulary size
    assert 46_500_000 < count_parameters(net) < 47_500_000


def test_paper_presets_match_the_published_commands() -> None:
    c = PAPER["ptbc"]
    assert (c.emsize, c.nhid, c.nlayers, c.bptt, c.batch_size, c.optimizer, c.lr) == (
        200, 1000, 3, 150, 128, "adam", 2e-3,
    )  # fmt: skip
    assert (c.wdrop, c.dropoute, c.dropouth, c.dropouti, c.dropout) == (0.5, 0.0, 0.25, 0.1, 0.1)
    assert (c.alpha, c.beta, c.wdecay, c.epochs, c.when) == (0.0, 0.0, 1.2e-6, 500, (300, 400))
    e = PAPER["enwik8"]
    assert (e.emsize, e.nhid, e.bptt, e.batch_size, e.optimizer, e.lr) == (
        400,
        1840,
        200,
        128,
        "adam",
        1e-3,
    )
    assert (e.wdrop, e.dropouth, e.dropouti, e.dropout, e.epochs, e.when) == (
        0.2,
        0.1,
        0.1,
        0.4,
        50,
        (25, 35),
    )
    w = PAPER["ptbw"]
    assert (w.emsize, w.nhid, w.bptt, w.batch_size, w.optimizer, w.lr, w.clip) == (
        400,
        1150,
        70,
        20,
        "sgd",
        30.0,
        0.25,
    )
    assert (w.dropout, w.dropouth, w.dropouti, w.dropoute, w.wdrop) == (0.4, 0.25, 0.4, 0.1, 0.5)
    assert (w.alpha, w.beta, w.wdecay, w.epochs, w.seed, w.nonmono) == (
        2.0,
        1.0,
        1.2e-6,
        500,
        141,
        5,
    )


def test_every_model_has_paper_cpu_and_smoke_presets_and_a_spec() -> None:
    for model in ("ptbc", "ptbw", "enwik8"):
        assert set(PRESETS[model]) == {"paper", "cpu", "smoke"}
        assert all(c.model == model for c in PRESETS[model].values())
        assert get_spec(model).config("cpu") is PRESETS[model]["cpu"]
    assert get_spec("ptbw").metric == "ppl" and get_spec("ptbc").metric == "bpc"
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("ptbc", "big")


def test_config_round_trips_through_json_and_rejects_unknown_keys() -> None:
    c = PAPER["ptbc"]
    back = LMConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c
    with pytest.raises(ValueError, match="unknown LMConfig field\\(s\\) hidden;"):
        LMConfig.from_dict({**c.to_dict(), "hidden": 3})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"wdrop": 1.0}, "wdrop"),
        ({"nhid": 0}, "nhid"),
        ({"lr": 0.0}, "lr"),
        ({"forget_bias": float("nan")}, "forget_bias"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"lr_schedule": "cosine", "when": (3,)}, "when=\\(3,\\)"),
        ({"lr_min": 31.0}, "lr_min"),
        ({"warmup_steps": -1}, "warmup_steps"),
    ],
)
def test_config_rejects_bad_values_with_a_clear_message(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PAPER["ptbw"].replace(**change)


def test_decoder_is_tied_and_lstm_sizes_chain_back_to_emsize() -> None:
    net = AWDLSTM(30, 6, 10, 3)
    assert net.decoder.weight is net.encoder.weight
    assert [(r.input_size, r.hidden_size) for r in net.rnns] == [(6, 10), (10, 10), (10, 6)]
    out = net(torch.randint(0, 30, (7, 2)))
    assert out.output.shape == (7, 2, 6)
    assert [h.shape for h, _ in out.hidden] == [(1, 2, 10), (1, 2, 10), (1, 2, 6)]
    assert net.nll(out.output, torch.zeros(7, 2, dtype=torch.long)).ndim == 0


def test_locked_dropout_shares_one_mask_across_time_and_is_off_in_eval() -> None:
    torch.manual_seed(0)
    ld = LockedDropout().train()
    x = torch.ones(9, 3, 40)
    y = ld(x, 0.5)
    assert torch.equal(y, y[0].expand_as(y))
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(ld.eval()(x, 0.5), x)


def test_embedding_dropout_drops_whole_word_types_and_scales_the_rest() -> None:
    torch.manual_seed(0)
    weight = torch.ones(50, 4)
    tokens = torch.tensor([[3, 3, 7], [7, 3, 9]])
    e = embedding_dropout(tokens, weight, 0.5, training=True)
    for t in (3, 7, 9):
        rows = e[tokens == t]
        assert torch.equal(
            rows, rows[0].expand_as(rows)
        )  # every occurrence dropped or kept together
        assert rows[0, 0].item() in (0.0, 2.0)
    assert torch.equal(embedding_dropout(tokens, weight, 0.5, training=False), weight[tokens])


def test_ar_and_tar_values() -> None:
    h = torch.tensor([[[1.0, 2.0]], [[3.0, 5.0]]])  # (seq 2, batch 1, 2)
    assert activation_regularization(h, 2.0).item() == pytest.approx(2.0 * (1 + 4 + 9 + 25) / 4)
    assert temporal_activation_regularization(h, 1.0).item() == pytest.approx((4 + 9) / 2)


def test_model_dropouts_are_active_in_train_and_off_in_eval() -> None:
    torch.manual_seed(0)
    net = AWDLSTM(20, 8, 12, 3, dropout=0.3, dropouth=0.3, dropouti=0.3, dropoute=0.3, wdrop=0.3)
    x = torch.randint(0, 20, (6, 2))
    net.train()
    assert not torch.allclose(net(x).output, net(x).output)
    net.eval()
    torch.testing.assert_close(net(x).output, net(x).output)
