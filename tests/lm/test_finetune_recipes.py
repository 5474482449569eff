"""lm's fine-tune under the recipe flags: distillation from a frozen teacher, the rewound lr
schedule, the dense schedule of the joint recipe, and the distillation loss itself."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from common.distill import Distill, distillation_loss, parse_distill
from common.spec import Finetune
from lm.spec import PTBC, rewound_lr
from lm.trainer import Trainer, dense_lr, scheduled_lr


class NoState:
    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def _models(corpus, cfg, seeds=(0, 1)):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(PTBC.build(cfg, corpus))
    return out


def _train(model, corpus, cfg, **kw):
    torch.manual_seed(5)
    trainer = Trainer(model, corpus, cfg, **kw)
    for _ in range(cfg.epochs):
        trainer.run_epoch()
    return trainer


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_distillation_at_weight_zero_trains_bit_for_bit_as_no_distillation(
    char_corpus, make_config
):
    cfg = make_config()
    plain, teacher = _models(char_corpus, cfg)
    distilled = PTBC.build(cfg, char_corpus)
    distilled.load_state_dict(plain.state_dict())
    _train(plain, char_corpus, cfg)
    tr = _train(distilled, char_corpus, cfg, distill=Distill(teacher, 2.0, 0.0))
    assert _same_weights(plain, distilled)
    assert tr.teacher_time_s > 0  # the teacher did run on every batch


def test_distillation_with_a_weight_changes_training_and_leaves_the_teacher_alone(
    char_corpus, make_config
):
    cfg = make_config()
    plain, teacher = _models(char_corpus, cfg)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distilled = PTBC.build(cfg, char_corpus)
    distilled.load_state_dict(plain.state_dict())
    _train(plain, char_corpus, cfg)
    _train(distilled, char_corpus, cfg, distill=Distill(teacher, 2.0, 1.0))
    assert not _same_weights(plain, distilled)
    assert all(torch.equal(teacher_before[k], v) for k, v in teacher.state_dict().items())
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_distillation_loss_is_t_squared_times_the_kl_and_zero_for_the_teacher_itself():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 9, generator=g), torch.randn(6, 9, generator=g)
    temp = 3.0
    p_t = F.softmax(t / temp, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / temp, -1))).sum(-1).mean()
    assert distillation_loss(s, t, temp).item() == pytest.approx(temp**2 * kl.item(), rel=1e-5)
    assert distillation_loss(t, t, temp).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "text, fragment",
    [("0,1", "T must be > 0"), ("-1,1", "T must be > 0"), ("2,-0.5", "W must be >= 0"),
     ("2", "must be T,W"), ("2,1,3", "must be T,W"), ("a,b", "must be T,W"),
     ("nan,1", "T must be > 0"), ("2,inf", "W must be >= 0")],
)  # fmt: skip
def test_bad_distill_values_are_refused_by_name(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_distill(text)


def test_distill_parses_temperature_and_weight():
    assert parse_distill("2,0.5") == (2.0, 0.5) and parse_distill("1.5,0") == (1.5, 0.0)


# --------------------------------------------------------------------------- lr rewinding


def test_the_rewound_schedule_is_the_tail_of_the_dense_cosine(make_config):
    cfg = make_config(lr_schedule="cosine", lr=1e-2, lr_min=1e-4, epochs=4, max_steps_per_epoch=5)
    n = 20  # dense steps
    lr_at = rewound_lr(cfg, n, 5, 6)
    for j in range(6):
        s = n - 6 + j
        assert lr_at(j) == pytest.approx(scheduled_lr(cfg, s, s / n))
    assert lr_at(0) > lr_at(5) > cfg.lr_min
    # a fine-tune longer than the dense run starts at the dense run's first rate
    assert rewound_lr(cfg, n, 5, 30)(0) == pytest.approx(dense_lr(cfg, 0, n, 5))


def test_the_step_schedule_drops_after_its_when_epochs():
    from lm.presets import get_preset

    cfg = get_preset("ptbc", "paper").replace(epochs=5, when=(2, 4))
    rates = [dense_lr(cfg, s, 50, 10) for s in range(0, 50, 10)]
    assert rates == pytest.approx([2e-3, 2e-3, 2e-4, 2e-4, 2e-5])


class Scalars:
    """A SummaryWriter stand-in that keeps what it is given."""

    def __init__(self):
        self.values: dict[str, dict[int, float]] = {}

    def add_scalar(self, tag, value, step):
        self.values.setdefault(tag, {})[step] = float(value)


def test_finetune_with_lr_rewind_trains_each_step_at_the_dense_tails_rate(
    tmp_path, char_corpus, make_config
):
    cfg = make_config(lr_schedule="cosine", lr=1e-2, lr_min=1e-4, epochs=4, max_steps_per_epoch=5,
                      log_interval=1)  # fmt: skip
    model = PTBC.build(cfg, char_corpus)
    seen: list[int] = []
    writer = Scalars()
    ft = Finetune(epochs=1, resume=False, state=NoState(), on_step=seen.append, max_steps=4,
                  lr_rewind=True, lr_scale=0.5, writer=writer)  # fmt: skip
    info = PTBC.finetune(model, char_corpus, cfg, tmp_path, ft)
    expected = [0.5 * dense_lr(cfg, s, 20, 5) for s in range(16, 20)]  # the last 4 of 20 steps
    assert info["steps"] == 4 and seen == [0, 1, 2, 3]
    assert [writer.values["train/lr"][k] for k in (1, 2, 3, 4)] == pytest.approx(expected)
    assert info["lr_first"] == pytest.approx(expected[0])


def test_a_cosine_finetune_decays_from_the_finetune_rate_to_the_dense_floor(
    tmp_path, char_corpus, make_config
):
    cfg = make_config(lr_schedule="cosine", lr=1e-2, lr_min=1e-4, epochs=4, max_steps_per_epoch=5,
                      log_interval=1)  # fmt: skip
    model = PTBC.build(cfg, char_corpus)
    writer = Scalars()
    ft = Finetune(epochs=1, resume=False, state=NoState(), max_steps=4, lr_decay="cosine",
                  lr_scale=2.0, writer=writer)  # fmt: skip
    info = PTBC.finetune(model, char_corpus, cfg, tmp_path, ft)
    start = 2.0 * 1e-3  # a tenth of the cosine peak, times lr_scale
    expected = [1e-4 + (start - 1e-4) * (1 + math.cos(math.pi * s / 4)) / 2 for s in range(4)]
    assert info["steps"] == 4
    assert [writer.values["train/lr"][k] for k in (1, 2, 3, 4)] == pytest.approx(expected)


def test_the_dense_schedule_runs_the_dense_config_unchanged(tmp_path, char_corpus, make_config):
    cfg = make_config(lr_schedule="cosine", lr=1e-2, lr_min=1e-4, epochs=2, max_steps_per_epoch=3)
    torch.manual_seed(0)
    a = PTBC.build(cfg, char_corpus)
    b = PTBC.build(cfg, char_corpus)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(1)
    info = PTBC.finetune(
        a, char_corpus, cfg, tmp_path, Finetune(epochs=2, resume=False, state=NoState(),
                                                schedule="dense")
    )  # fmt: skip
    torch.manual_seed(1)
    tr = Trainer(b, char_corpus, cfg)
    while tr.epoch < cfg.epochs:
        tr.run_epoch()
    assert info["steps"] == 6 and len(info["valid"]) == 2
    assert _same_weights(a, b)
    assert math.isfinite(info["valid"][-1]["bpc"])


def test_an_unknown_finetune_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule must be one of finetune, dense"):
        Finetune(epochs=1, resume=False, state=None, schedule="joint")
