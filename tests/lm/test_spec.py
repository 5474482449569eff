"""lm.spec: the AWD-LSTM models as compress.run sees them."""

from __future__ import annotations

import pytest

from lm.presets import get_preset
from lm.spec import finetune_lr


def test_fine_tuning_continues_at_the_dense_schedules_final_learning_rate():
    cfg = get_preset("ptbc", "paper")  # Adam 2e-3, when 300 400, 500 epochs
    assert finetune_lr(cfg) == pytest.approx(2e-5)
    assert finetune_lr(cfg.replace(epochs=350)) == pytest.approx(2e-4)
    assert finetune_lr(cfg.replace(when=())) == pytest.approx(2e-3)
    # a cosine schedule ends near zero: fine-tuning starts at a tenth of its peak instead
    cosine = cfg.replace(when=(), lr_schedule="cosine", lr_min=0.0)
    assert finetune_lr(cosine) == pytest.approx(2e-4)
