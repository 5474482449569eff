"""The pipeline's parts of the training recipes: regrowing masks (the published default) or
masks that only shrink (--no-regrow), the L1 penalty on the masked weights, and the per-event
figures (nonzeros, array columns, packing efficiency)."""

from __future__ import annotations

import pytest
import torch

from compress.config import CombineConfig, PruneConfig
from compress.passes.combine import CombinePass
from compress.passes.prune import PrunePass
from compress.pipeline import Pipeline, mask_of
from compress.schedule import Schedule
from tests.compress.test_pipeline import _toy, _train


def _pipeline(regrow: bool, n_events: int = 4) -> tuple[torch.nn.Module, Pipeline]:
    model = _toy(seed=3)
    passes = [PrunePass(PruneConfig(final_sparsity=0.6)), CombinePass(CombineConfig(max_paths=3))]
    pipe = Pipeline(passes, Schedule("cubic", 0.0, 0.6, n_events=n_events, end_step=3 * n_events),
                    regrow=regrow)  # fmt: skip
    pipe.prepare(model)
    return model, pipe


def _kept(pipe: Pipeline) -> list[torch.Tensor]:
    return [mask_of(t).bool().clone() for t in pipe.targets]


def _events_with_training(model, pipe, n_events=4, steps_between=6, lr=5e-2):
    """Apply the events one by one with training in between; the kept sets after each."""
    kept = []
    for k in range(1, n_events + 1):
        pipe.apply_event(k)
        kept.append(_kept(pipe))
        _train(model, steps_between, seed=k, lr=lr)
    return kept


def test_without_regrow_every_event_keeps_a_subset_of_the_previous_ones_weights():
    model, pipe = _pipeline(regrow=False)
    kept = _events_with_training(model, pipe)
    for before, after in zip(kept, kept[1:]):
        for b, a in zip(before, after):
            assert not (a & ~b).any()
    # and the effective weights stay zero wherever a mask once removed them
    for t, first in zip(pipe.targets, kept[0]):
        assert torch.equal(t.weight().detach()[~first], torch.zeros(int((~first).sum())))


def test_with_regrow_masks_are_rebuilt_from_the_raw_weights_and_may_bring_weights_back():
    model, pipe = _pipeline(regrow=True)
    kept = _events_with_training(model, pipe)
    came_back = sum(int((a & ~b).sum()) for before, after in zip(kept, kept[1:])
                    for b, a in zip(before, after))  # fmt: skip
    assert came_back > 0


def test_l1_penalty_is_the_sum_of_masked_magnitudes_and_gives_kept_weights_its_sign():
    model, pipe = _pipeline(regrow=True)
    pipe.apply_event(4)
    for p in model.parameters():
        p.grad = None
    pen = pipe.l1_penalty()
    expected = sum(float((t.raw().detach() * mask_of(t)).abs().sum()) for t in pipe.targets)
    assert pen.item() == pytest.approx(expected, rel=1e-5)
    pen.backward()
    for t in pipe.targets:
        m, g = mask_of(t).bool(), t.raw().grad
        assert torch.equal(g[~m], torch.zeros(int((~m).sum())))
        assert torch.equal(g[m], torch.sign(t.raw().detach()[m]))


def test_summary_gives_array_columns_and_packing_efficiency_once_grouped():
    model, pipe = _pipeline(regrow=True)
    assert "array_columns" not in pipe.summary()
    pipe.apply_event(4)
    s = pipe.summary()
    packed = pipe.finalize()
    assert s["array_columns"] == sum(layer.groups for layer in packed.layers)
    cells = sum(layer.rows * layer.groups for layer in packed.layers)
    assert s["packing_efficiency"] == pytest.approx(s["nonzero"] / cells)
