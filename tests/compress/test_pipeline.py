"""Passes and pipeline on a toy LSTM model: masks, schedules, combining, quantization, packing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from compress.config import CombineConfig, PruneConfig, QuantConfig
from compress.packing import packed_matmul, unpack_dense
from compress.parametrize import FakeQuant, Mask, find
from compress.passes.combine import CombinePass
from compress.passes.finalize import masked_weight
from compress.passes.prune import PrunePass, magnitude_keep
from compress.passes.quantize import QuantizePass
from compress.pipeline import Pipeline
from compress.schedule import Schedule, progress
from compress.targets import find_targets
from lm.lstm import MaskableLSTM


class Toy(nn.Module):
    def __init__(self, vocab=11, emb=6, hid=10):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.rnns = nn.ModuleList([MaskableLSTM(emb, hid), MaskableLSTM(hid, emb)])
        self.dec = nn.Linear(emb, vocab)

    def forward(self, x):
        h = self.emb(x)
        for r in self.rnns:
            h, _ = r(h)
        return self.dec(h)


def _toy(seed=0):
    torch.manual_seed(seed)
    return Toy()


def _train(model, steps, pipeline=None, seed=0, lr=1e-2):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-3)
    for step in range(steps):
        x = torch.randint(0, 11, (7, 3), generator=g)
        y = torch.randint(0, 11, (7, 3), generator=g)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, 11), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if pipeline is not None:
            pipeline.on_step(step)


# --------------------------------------------------------------------------- targets


def test_default_targets_are_the_lstm_fused_matrices_only():
    ts = find_targets(_toy())
    assert [t.name for t in ts] == ["rnns.0", "rnns.1"]
    assert (ts[0].rows, ts[0].cols, ts[0].col_splits) == (40, 16, (0, 6, 16))
    assert ts[0].row_blocks == (0, 10, 20, 30, 40)


def test_targets_regex_selects_linear_layers_and_rejects_no_match():
    ts = find_targets(_toy(), pattern=r"^dec$")
    assert [(t.name, t.kind, t.rows, t.cols) for t in ts] == [("dec", "linear", 11, 6)]
    with pytest.raises(ValueError, match="matches no"):
        find_targets(_toy(), pattern="nothing-here")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        find_targets(_toy(), pattern="(")


def test_plain_nn_lstm_is_refused_with_the_reason():
    m = nn.Sequential(nn.LSTM(4, 5))
    with pytest.raises(ValueError, match="65688"):
        find_targets(m)


def test_tied_weight_is_one_target():
    m = nn.Module()
    m.a = nn.Linear(4, 4, bias=False)
    m.b = nn.Linear(4, 4, bias=False)
    m.b.weight = m.a.weight
    assert [t.name for t in find_targets(m, kinds=("linear",))] == ["a"]


# --------------------------------------------------------------------------- schedule & prune


def test_cubic_schedule_reaches_the_final_sparsity_exactly_at_the_last_event():
    s = Schedule("cubic", 0.1, 0.8, n_events=5, start_step=0, end_step=40)
    rates = [s.sparsity_at_event(k) for k in range(1, 6)]
    assert rates[-1] == pytest.approx(0.8, abs=0)
    assert all(a < b for a, b in zip(rates, rates[1:]))
    assert rates[0] == pytest.approx(0.1 + 0.7 * (1 - 0.8**3))
    assert s.event_steps() == [0, 10, 20, 30, 40]


def test_events_sharing_a_step_fire_the_last_one():
    s = Schedule("cubic", 0.0, 0.5, n_events=4, start_step=3, end_step=4)
    fired = [s.event_at_step(k) for k in range(6)]
    assert fired == [None, None, None, 2, 4, None]
    assert progress("cubic", 4, 4) == 1.0


def test_schedule_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="final_sparsity"):
        Schedule(final_sparsity=1.0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        Schedule(kind="exp")


def test_magnitude_keep_drops_exactly_the_requested_count_lowest_index_first_on_ties():
    scores = torch.tensor([[1.0, 0.5, 0.5], [0.5, 2.0, 3.0]])
    keep = magnitude_keep(scores, 0.5)  # drop 3 of 6: the three 0.5s
    assert keep.tolist() == [[True, False, False], [False, True, True]]
    keep = magnitude_keep(scores, 1 / 3)  # drop 2: the first two 0.5s in flat order
    assert keep.tolist() == [[True, False, False], [True, True, True]]


@pytest.mark.parametrize("gate_aware", [False, True])
def test_prune_pass_reaches_final_sparsity_per_target_and_per_gate(gate_aware):
    model = _toy()
    ts = find_targets(model)
    p = PrunePass(PruneConfig(final_sparsity=0.6, gate_aware=gate_aware))
    p.prepare(ts)
    p.update(ts, 1.0)
    for t in ts:
        w = t.weight().detach()
        blocks = list(zip(t.row_blocks[:-1], t.row_blocks[1:])) if gate_aware else [(0, t.rows)]
        for lo, hi in blocks:  # rounding is per ranked block
            assert int((w[lo:hi] == 0).sum()) == round(0.6 * w[lo:hi].numel())


def test_global_prune_uses_one_threshold_over_all_targets():
    model = _toy()
    ts = find_targets(model)
    p = PrunePass(PruneConfig(final_sparsity=0.5, scope="global"))
    p.prepare(ts)
    p.update(ts, 1.0)
    kept = torch.cat([t.weight().detach().abs().reshape(-1) for t in ts])
    raw = torch.cat([t.raw().detach().abs().reshape(-1) for t in ts])
    assert int((kept == 0).sum()) == round(0.5 * raw.numel())
    assert kept[kept > 0].min() >= raw[kept == 0].max()


def test_masked_entries_stay_zero_while_unmasked_train_and_raw_gets_gradients():
    model = _toy()
    ts = find_targets(model)
    p = PrunePass(PruneConfig(final_sparsity=0.5))
    p.prepare(ts)
    p.update(ts, 1.0)
    before = [t.weight().detach().clone() for t in ts]
    _train(model, 5)
    for t, b in zip(ts, before):
        w = t.weight().detach()
        assert torch.equal(w[b == 0], torch.zeros_like(w[b == 0]))
        assert (w[b != 0] != b[b != 0]).float().mean() > 0.9
        assert t.raw().grad is not None and t.raw().grad.abs().sum() > 0


# --------------------------------------------------------------------------- combine


@pytest.mark.parametrize("alpha", [1, 2, 3, 8])
def test_combine_pass_leaves_at_most_one_weight_per_row_and_group(alpha):
    model = _toy()
    ts = find_targets(model)
    c = CombinePass(CombineConfig(max_paths=alpha, gamma=1.75))
    c.prepare(ts)
    c.update(ts, 1.0)
    for t in ts:
        w = t.weight().detach().numpy()
        g = c.groups_of(t)
        sizes = np.diff(g.group_ptr)
        assert sizes.max() <= alpha
        # every surviving column is in a group (a column may lose all its weights to conflicts)
        assert set(np.flatnonzero((w != 0).any(0)).tolist()) <= set(g.group_cols.tolist())
        assert len(set(g.group_cols.tolist())) == len(g.group_cols)
        for k in range(g.n_groups):
            cols = g.group_cols[g.group_ptr[k] : g.group_ptr[k + 1]]
            assert ((w[:, cols] != 0).sum(axis=1) <= 1).all()
            lo = max(s for s in t.col_splits if s <= cols.min())
            assert cols.max() < min(s for s in t.col_splits if s > cols.min()) and cols.min() >= lo
        assert g.groups_per_split.sum() == g.n_groups
        if alpha > 1:
            assert g.n_groups < np.count_nonzero((w != 0).any(0)) or t.cols == 0


def test_combine_pre_prunes_to_one_minus_one_over_alpha():
    model = _toy()
    ts = find_targets(model)
    c = CombinePass(CombineConfig(max_paths=4, gamma=1.75))
    c.prepare(ts)
    c.update(ts, 1.0)
    for t in ts:
        density = float((t.weight() != 0).float().mean())
        assert density <= 0.25 + 1e-9  # 1 - 3/4 before conflicts are pruned


def test_combine_on_top_of_prune_keeps_pruned_weights_pruned():
    model = _toy()
    ts = find_targets(model)
    p, c = PrunePass(PruneConfig(final_sparsity=0.9)), CombinePass(CombineConfig(max_paths=2))
    pipe = Pipeline([p, c], Schedule("cubic", 0.0, 0.9, n_events=1))
    pipe.prepare(model)
    pipe.apply_event(1)
    for t in ts:
        prune_mask = find(t.module, t.param, Mask, "prune").mask
        assert torch.equal(
            t.weight().detach()[prune_mask == 0], torch.zeros(int((prune_mask == 0).sum()))
        )


# --------------------------------------------------------------------------- pipeline end to end


def _packed_equals_effective(pipe, packed, atol=1e-6):
    rng = np.random.default_rng(0)
    for t, layer in zip(pipe.targets, packed.layers):
        dense = t.weight().detach().numpy().astype(np.float64)
        X = rng.standard_normal((t.cols, 5))
        got = packed_matmul(layer, X)
        np.testing.assert_allclose(got, dense @ X, atol=atol, rtol=1e-5)
        assert layer.nnz == int(np.count_nonzero(unpack_dense(layer)))


def test_pipeline_trains_between_events_and_packs_to_the_effective_weights():
    model = _toy()
    pipe = Pipeline(
        [PrunePass(PruneConfig(final_sparsity=0.3)), CombinePass(CombineConfig(max_paths=3))],
        Schedule("cubic", 0.0, 0.3, n_events=3, start_step=2, end_step=8),
    )
    pipe.prepare(model)
    _train(model, 14, pipe)
    assert pipe.events_done == 3
    packed = pipe.finalize(model="toy", workload={"seq_len": 7, "batch": 3})
    assert [layer.name for layer in packed.layers] == ["rnns.0", "rnns.1"]
    assert all(layer.max_paths == 3 for layer in packed.layers)
    _packed_equals_effective(pipe, packed)


def test_quantized_pipeline_packs_integer_codes_and_scales():
    model = _toy()
    q = QuantizePass(QuantConfig(mode="qat", bits=4, act_bits=32))
    pipe = Pipeline([CombinePass(CombineConfig(max_paths=2)), q], Schedule(n_events=1))
    pipe.prepare(model)
    pipe.apply_event(1)
    _train(model, 3, pipe)
    packed = pipe.finalize()
    for t, layer in zip(pipe.targets, packed.layers):
        assert layer.weight_bits == 4 and layer.scale is not None
        assert np.array_equal(layer.values, np.round(layer.values))
        assert np.abs(layer.values).max() <= 7
        assert find(t.module, t.param, FakeQuant) is not None
        # the forward weight is exactly codes * scale of the masked weight
        codes = unpack_dense(layer) / layer.scale[:, None]
        assert np.array_equal(codes != 0, (t.weight().detach().numpy() != 0))
        assert np.count_nonzero(codes) <= np.count_nonzero(masked_weight(t).numpy())
    _packed_equals_effective(pipe, packed, atol=1e-5)


def test_fake_quant_gradient_is_straight_through():
    w = torch.randn(3, 5, requires_grad=True)
    FakeQuant(4)(w).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_groups_travel_in_the_model_state_dict():
    model = _toy()
    pipe = Pipeline([CombinePass(CombineConfig(max_paths=3))], Schedule(n_events=1))
    pipe.prepare(model)
    pipe.apply_event(1)
    other_model = _toy(seed=1)
    other = Pipeline([CombinePass(CombineConfig(max_paths=3))], Schedule(n_events=1))
    other.prepare(other_model)
    assert other.pass_named("combine").groups_of(other.targets[0]) is None
    other_model.load_state_dict(model.state_dict())
    for t, u in zip(pipe.targets, other.targets):
        g, h = pipe.pass_named("combine").groups_of(t), other.pass_named("combine").groups_of(u)
        assert np.array_equal(g.group_ptr, h.group_ptr) and np.array_equal(
            g.group_cols, h.group_cols
        )
        assert np.array_equal(g.groups_per_split, h.groups_per_split)
        assert torch.equal(t.weight(), u.weight())


def test_config_errors_name_the_value_and_the_range():
    with pytest.raises(ValueError, match=r"max_paths \(alpha\) must be an integer >= 1; got 0"):
        CombineConfig(max_paths=0)
    with pytest.raises(ValueError, match="gamma must be >= 0; got -1"):
        CombineConfig(gamma=-1)
    with pytest.raises(ValueError, match=r"--bits must be in 2\.\.16, or 32 for float; got 1"):
        QuantConfig(bits=1)
    with pytest.raises(ValueError, match=r"final_sparsity must be in \[0, 1\); got 1.0"):
        PruneConfig(final_sparsity=1.0)


def test_lstm_step_loop_equals_the_fused_kernel_and_quantizes_the_fed_back_h():
    from compress.parametrize import ActQuant

    torch.manual_seed(0)
    layer = MaskableLSTM(5, 7).eval()
    x = torch.randn(9, 3, 5)
    fused, (h1, c1) = layer(x)
    layer.recurrent_act = nn.Identity()
    loop, (h2, c2) = layer(x)
    torch.testing.assert_close(loop, fused, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((h2, c2), (h1, c1), atol=1e-5, rtol=1e-5)
    seen = []
    aq = ActQuant(3)
    aq.amax.fill_(1.0)
    aq.calibrating = False
    layer.recurrent_act = nn.Sequential(aq, nn.Identity())
    layer.recurrent_act.register_forward_hook(lambda m, i, o: seen.append(o))
    quant, _ = layer(x)
    levels = torch.unique(torch.cat([s.reshape(-1) for s in seen[1:]]) * 3)
    assert torch.allclose(levels, levels.round(), atol=1e-5)  # h fed back on the 3-bit grid
    assert not torch.allclose(quant, fused, atol=1e-3)


def test_quantize_pass_calibrates_input_and_recurrent_ranges():
    model = _toy()
    q = QuantizePass(QuantConfig(mode="ptq", bits=8, act_bits=8))
    pipe = Pipeline([q], Schedule(n_events=1))
    pipe.prepare(model)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 11, (6, 2), generator=g) for _ in range(3)]
    assert q.calibrate(lambda b: model(b), batches) == 3
    ranges = q.act_ranges()
    assert len(ranges) == 4 and all(r > 0 for r in ranges)  # input + recurrent, per LSTM
    assert all(r <= 1.0 for r in ranges[1::2])  # h = o * tanh(c) lies in (-1, 1)
    for t in pipe.targets:
        assert not t.module.input_act.calibrating and not t.module.recurrent_act.calibrating
