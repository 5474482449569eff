"""The translator's fine-tune under the recipe flags, on tiny made data: distillation on the
decoder's token distributions, the rewound lr schedule, the dense schedule of the joint recipe."""

from __future__ import annotations

import pytest
import torch

from common.distill import Distill
from common.spec import Finetune
from nmt.data import prepare_data, steps_per_epoch_of
from nmt.spec import NMT
from nmt.training import build_model, learning_rate, train
from tests.nmt.test_nmt_train import TINY, made_pairs

CFG = TINY.replace(epochs=1)


@pytest.fixture(scope="module")
def data():
    return prepare_data(CFG, made_pairs())


def _model(data, seed: int):
    return build_model(CFG.replace(seed=seed), data.src_tok.vocab_size, data.tgt_tok.vocab_size)


def _train(model, data, path, **kw):
    torch.manual_seed(1)  # the same dropout draws in every run (build_model reseeds the RNG)
    return train(model, data, CFG, path, progress=False, **kw)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_distillation_at_weight_zero_trains_bit_for_bit_as_without(data, tmp_path):
    plain, kd, teacher = _model(data, 0), _model(data, 0), _model(data, 5)
    _train(plain, data, tmp_path / "a")
    res = _train(kd, data, tmp_path / "b", distill=Distill(teacher, 2.0, 0.0))
    assert _same(plain, kd) and res["teacher_time_s"] > 0


def test_distillation_with_a_weight_moves_the_student_and_not_the_teacher(data, tmp_path):
    plain, kd, teacher = _model(data, 0), _model(data, 0), _model(data, 5)
    before = [p.clone() for p in teacher.parameters()]
    _train(plain, data, tmp_path / "a")
    _train(kd, data, tmp_path / "b", distill=Distill(teacher, 2.0, 1.0))
    assert not _same(plain, kd)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))


def test_training_follows_the_given_lr_function(data, tmp_path):
    model, start = _model(data, 0), _model(data, 0)
    _train(model, data, tmp_path, lr_at=lambda step: 0.0)
    assert _same(model, start)  # AdamW at rate 0 moves nothing, weight decay included


def test_the_rewound_schedule_is_the_tail_of_the_dense_runs(data):
    dense = CFG.replace(epochs=3)
    per_epoch = steps_per_epoch_of(dense, data)
    tuned = dense.replace(max_steps=4)
    ft = Finetune(epochs=1, resume=False, state=None, lr_rewind=True, lr_scale=0.5)
    lr_at = NMT._rewound_lr(dense, data, tuned, ft)
    n = 3 * per_epoch
    assert [lr_at(j) for j in range(4)] == pytest.approx(
        [0.5 * learning_rate(dense, n - 4 + j, n, per_epoch) for j in range(4)]
    )


def test_the_dense_schedule_trains_the_dense_config_unchanged(data, tmp_path):
    class NoState:
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    a, b = _model(data, 0), _model(data, 0)
    torch.manual_seed(1)
    info = NMT.finetune(a, data, CFG, tmp_path / "a",
                        Finetune(epochs=1, resume=False, state=NoState(), schedule="dense"))  # fmt: skip
    _train(b, data, tmp_path / "b")
    assert _same(a, b) and len(info["valid"]) == 1
