"""lm.spec: the AWD-LSTM models as compress.run sees them."""

from __future__ import annotations

import pytest

from common.spec import Finetune
from lm.presets import get_preset
from lm.rundir import CHECKPOINT, load_checkpoint
from lm.spec import PTBC, finetune_lr


def test_fine_tuning_continues_at_the_dense_schedules_final_learning_rate():
    cfg = get_preset("ptbc", "paper")  # Adam 2e-3, when 300 400, 500 epochs
    assert finetune_lr(cfg) == pytest.approx(2e-5)
    assert finetune_lr(cfg.replace(epochs=350)) == pytest.approx(2e-4)
    assert finetune_lr(cfg.replace(when=())) == pytest.approx(2e-3)
    # a cosine schedule ends near zero: fine-tuning starts at a tenth of its peak instead
    cosine = cfg.replace(when=(), lr_schedule="cosine", lr_min=0.0)
    assert finetune_lr(cosine) == pytest.approx(2e-4)


@pytest.mark.parametrize("eval_tokens", [0, 200])
def test_dense_training_reports_the_quality_evaluate_gives_so_compress_run_scores_once(
    tmp_path, char_corpus, make_config, eval_tokens
):
    import torch

    cfg = make_config(eval_tokens=eval_tokens)
    torch.manual_seed(0)
    model = PTBC.build(cfg, char_corpus)
    info = PTBC.train_dense(
        model, char_corpus, cfg, tmp_path / "train", epochs=cfg.epochs, resume=False
    )
    again = PTBC.evaluate(model, char_corpus, cfg)
    assert info["quality"]["valid"] == pytest.approx(again["valid"], rel=1e-6)
    assert info["quality"]["test"] == pytest.approx(again["test"], rel=1e-6)


def test_finetune_caps_its_steps_and_saves_and_restores_the_state_with_its_checkpoint(
    tmp_path, char_corpus, make_config
):
    class State:
        loaded = None

        def state_dict(self):
            return {"events": 7}

        def load_state_dict(self, state):
            self.loaded = state

    cfg = make_config()
    model = PTBC.build(cfg, char_corpus)
    steps: list[int] = []
    state = State()
    ft = Finetune(epochs=2, resume=False, state=state, on_step=steps.append, max_steps=4)
    info = PTBC.finetune(model, char_corpus, cfg, tmp_path, ft)
    # 4 steps spread over 2 epochs; on_step gets 0-based step indices
    assert steps == [0, 1, 2, 3] and info["epochs"] == 2 and info["steps"] == 4
    assert load_checkpoint(tmp_path / CHECKPOINT)["pipeline"] == {"events": 7}
    again = PTBC.finetune(
        model, char_corpus, cfg, tmp_path, Finetune(epochs=2, resume=True, state=state)
    )
    assert state.loaded == {"events": 7} and again["steps"] == 4
