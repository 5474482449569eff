"""Spiking LSTM cells and stacks against plain-numpy implementations of their equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from nmt.cells import AnalogLSTMCell, GateSpikingLSTMCell, OutputSpikingLSTMCell
from nmt.stacks import AnalogLSTM, GateSpikingLSTM, OutputSpikingLSTM

# ----------------------------------------------------------------------------- numpy reference


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _weights(cell):
    w = {
        "wih": cell.linear_ih.weight.detach().numpy(),
        "whh": cell.linear_hh.weight.detach().numpy(),
        "bih": cell.linear_ih.bias.detach().numpy(),
        "bhh": cell.linear_hh.bias.detach().numpy(),
    }
    if hasattr(cell, "threshold"):
        w["theta"] = float(cell.threshold.detach())
    return w


def np_gate_step(w, x, h, c, clamp=True):
    """spikingjelly's equations: all four gates H(u) with H(0) = 1; c clamped to <= 1."""
    u = x @ w["wih"].T + w["bih"] + h @ w["whh"].T + w["bhh"]
    i, f, g, o = np.split((u >= 0).astype(np.float64), 4, axis=-1)
    c = f * c + i * g
    if clamp:
        c = np.minimum(c, 1.0)
    h = o * c
    return h, (h, c)


def np_analog_step(w, x, h, c):
    u = x @ w["wih"].T + w["bih"] + h @ w["whh"].T + w["bhh"]
    i, f, g, o = np.split(u, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return h, (h, c)


def np_output_step(w, x, h, c, quirk=False):
    """snnTorch SLSTM: analog LSTM step, spike = 1 if h - theta > 0 (strict)."""
    if quirk and x.shape[-1] != h.shape[-1]:
        h, c = np.zeros_like(h), np.zeros_like(c)
    h, (_, c) = np_analog_step(w, x, h, c)
    return (h - w["theta"] > 0).astype(np.float64), (h, c)


def np_stack(step, stack, x, lengths, h0, c0, **kw):
    """Each sequence alone, unpadded: layer-major states, reverse direction from its end."""
    steps, batch, _ = x.shape
    dirs = stack.num_directions
    hidden = stack.hidden_size
    out = np.zeros((steps, batch, dirs * hidden))
    h_n = np.zeros((stack.num_layers * dirs, batch, hidden))
    c_n = np.zeros_like(h_n)
    for b in range(batch):
        seq = x[: lengths[b], b]
        for layer in range(stack.num_layers):
            outs = []
            for d in range(dirs):
                cell = stack.cells[layer] if d == 0 else stack.cells_reverse[layer]
                w = _weights(cell)
                k = layer * dirs + d
                h, c = h0[k, b], c0[k, b]
                inp = seq if d == 0 else seq[::-1]
                ys = []
                for t in range(len(inp)):
                    y, (h, c) = step(w, inp[t], h, c, **kw)
                    ys.append(y)
                ys = np.array(ys).reshape(len(inp), hidden)
                outs.append(ys if d == 0 else ys[::-1])
                h_n[k, b], c_n[k, b] = h, c
            seq = np.concatenate(outs, axis=-1)
        out[: lengths[b], b] = seq
    return out, h_n, c_n


def _inputs(steps, batch, size, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(steps, batch, size)) * 2.0


# ----------------------------------------------------------------------------- cells


def test_gate_cell_step_equals_numpy_exactly():
    torch.manual_seed(0)
    cell = GateSpikingLSTMCell(6, 8).double()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 6))
    h = (rng.random((5, 8)) > 0.5).astype(np.float64)
    c = rng.normal(size=(5, 8))  # analog c too, so the clamp and products are exercised
    h1, c1 = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    want_h, (_, want_c) = np_gate_step(_weights(cell), x, h, c)
    np.testing.assert_array_equal(h1.detach().numpy(), want_h)
    np.testing.assert_array_equal(c1.detach().numpy(), want_c)


def test_gate_cell_output_is_binary_from_zero_state():
    torch.manual_seed(0)
    stack = GateSpikingLSTM(4, 16)
    y, (h, c) = stack(torch.randn(12, 3, 4) * 3)
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
    assert float(c.detach().max()) <= 1.0


def test_gate_cell_fires_at_exactly_zero_preactivation():
    cell = GateSpikingLSTMCell(3, 2)
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
    h, c = cell(torch.zeros(1, 3))
    # u = 0 everywhere: H(0) = 1 opens every gate, so c = 0*1 + 1*1 and h = 1.
    assert h.tolist() == [[1.0, 1.0]] and c.tolist() == [[1.0, 1.0]]


def test_gate_cell_clamp_is_forward_only_gradient_passes_straight_through():
    cell = GateSpikingLSTMCell(1, 1).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(1.0)  # every gate open
    c0 = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    h, c = cell(torch.ones(1, 1, dtype=torch.float64), (torch.zeros(1, 1).double(), c0))
    assert c.item() == 1.0  # 1*1 + 1*1 = 2, clamped to 1
    c.sum().backward()
    assert c0.grad.item() == 1.0  # d c'/d c = f = 1: the clamp does not stop the gradient


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("surrogate", ["erf", "atan"])
def test_fused_gate_update_matches_unfused_values_and_gradients(clamp, surrogate):
    torch.manual_seed(0)
    fused = GateSpikingLSTM(5, 8, num_layers=2, clamp=clamp, surrogate=surrogate).double()
    plain = GateSpikingLSTM(5, 8, num_layers=2, clamp=clamp, surrogate=surrogate).double()
    plain.load_state_dict(fused.state_dict())
    for cell in plain.cells:
        cell.fused = False
    x = torch.randn(9, 4, 5, dtype=torch.float64) * 2
    c0 = torch.rand(2, 4, 8, dtype=torch.float64) * 2
    h0 = torch.zeros(2, 4, 8, dtype=torch.float64)
    results = []
    for stack in (fused, plain):
        y, (h, c) = stack(x, (h0, c0), lengths=[9, 7, 3, 9])
        # Weight outputs and final states differently, so every backward path is checked.
        loss = (y * torch.arange(8.0, dtype=torch.float64)).sum() + 0.5 * c.sum() + h.sum()
        loss.backward()
        results.append((y, h, c, [p.grad.clone() for p in stack.parameters()]))
    (y1, h1, c1, g1), (y2, h2, c2, g2) = results
    assert torch.equal(y1, y2) and torch.equal(h1, h2) and torch.equal(c1, c2)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert any(float(g.abs().sum()) > 0 for g in g1)


def test_gate_cell_without_clamp_lets_c_grow_as_older_spikingjelly():
    cell = GateSpikingLSTMCell(1, 1, clamp=False)
    with torch.no_grad():
        for p in cell.parameters():
            p.fill_(1.0)
    state = None
    x = torch.ones(1, 1)
    for _ in range(3):
        state = cell(x, state)
    assert state[1].item() == 3.0 and state[0].item() == 3.0


def test_output_cell_step_equals_numpy():
    torch.manual_seed(0)
    cell = OutputSpikingLSTMCell(6, 8, threshold=0.05).double()
    rng = np.random.default_rng(2)
    x, h, c = rng.normal(size=(5, 6)), rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    s, (h1, c1) = cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    want_s, (want_h, want_c) = np_output_step(_weights(cell), x, h, c)
    assert 0 < want_s.sum() < want_s.size  # the comparison is not vacuous
    np.testing.assert_array_equal(s.detach().numpy(), want_s)
    np.testing.assert_allclose(h1.detach().numpy(), want_h, rtol=0, atol=1e-13)
    np.testing.assert_allclose(c1.detach().numpy(), want_c, rtol=0, atol=1e-13)


def test_output_cell_threshold_is_strict():
    cell = OutputSpikingLSTMCell(2, 3).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    _, (h, _) = cell(x)
    with torch.no_grad():
        cell.threshold.copy_(h[0, 0])
    s, _ = cell(x)
    assert s[0, 0].item() == 0.0  # h - theta == 0 does not fire


def test_output_cell_defaults_follow_snntorch_and_spikingparrot():
    cell = OutputSpikingLSTMCell(5, 7)
    assert isinstance(cell.threshold, torch.nn.Parameter) and cell.threshold.item() == 1.0
    assert cell.threshold.dim() == 0
    assert cell.surrogate.name == "spikingparrot"
    assert OutputSpikingLSTMCell(5, 7, surrogate="atan").surrogate.name == "atan"
    assert not cell.zero_state_quirk


@pytest.mark.parametrize("cls", [GateSpikingLSTMCell, OutputSpikingLSTMCell, AnalogLSTMCell])
def test_weights_and_biases_start_uniform_in_inverse_sqrt_hidden(cls):
    torch.manual_seed(0)
    cell = cls(30, 64)
    bound = 1 / 8
    for lin in (cell.linear_ih, cell.linear_hh):
        assert lin.weight.shape[0] == 4 * 64
        for p in (lin.weight.detach(), lin.bias.detach()):
            assert float(p.abs().max()) <= bound
            assert float(p.abs().max()) > 0.9 * bound
            assert abs(float(p.mean())) < 0.01


def test_analog_stack_matches_torch_nn_lstm_with_packed_sequences():
    torch.manual_seed(0)
    ours = AnalogLSTM(5, 6, num_layers=2, bidirectional=True).double()
    ref = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True).double()
    with torch.no_grad():
        for layer in range(2):
            for d, suffix in ((0, ""), (1, "_reverse")):
                cell = ours.cells[layer] if d == 0 else ours.cells_reverse[layer]
                getattr(ref, f"weight_ih_l{layer}{suffix}").copy_(cell.linear_ih.weight)
                getattr(ref, f"weight_hh_l{layer}{suffix}").copy_(cell.linear_hh.weight)
                getattr(ref, f"bias_ih_l{layer}{suffix}").copy_(cell.linear_ih.bias)
                getattr(ref, f"bias_hh_l{layer}{suffix}").copy_(cell.linear_hh.bias)
    x = torch.randn(7, 4, 5, dtype=torch.float64)
    lengths = torch.tensor([7, 5, 2, 1])
    h0 = torch.randn(4, 4, 6, dtype=torch.float64)
    c0 = torch.randn(4, 4, 6, dtype=torch.float64)
    y, (h, c) = ours(x, (h0, c0), lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths)
    ry, (rh, rc) = ref(packed, (h0, c0))
    ry, _ = torch.nn.utils.rnn.pad_packed_sequence(ry, total_length=7)
    torch.testing.assert_close(y, ry, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, rh, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, rc, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- stacks


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (3, True)])
@pytest.mark.parametrize("clamp", [True, False])
def test_gate_stack_equals_numpy_exactly_with_padding(layers, bidirectional, clamp):
    torch.manual_seed(layers + 10 * bidirectional)
    stack = GateSpikingLSTM(5, 8, layers, bidirectional, clamp=clamp).double()
    x = _inputs(9, 4, 5, seed=3)
    lengths = [9, 6, 1, 4]
    n = layers * stack.num_directions
    rng = np.random.default_rng(4)
    h0 = (rng.random((n, 4, 8)) > 0.5).astype(np.float64)
    c0 = (rng.random((n, 4, 8)) > 0.5).astype(np.float64)
    y, (h, c) = stack(
        torch.from_numpy(x),
        (torch.from_numpy(h0), torch.from_numpy(c0)),
        lengths=torch.tensor(lengths),
    )
    want_y, want_h, want_c = np_stack(np_gate_step, stack, x, lengths, h0, c0, clamp=clamp)
    assert 0 < want_y.sum() < want_y.size
    np.testing.assert_array_equal(y.detach().numpy(), want_y)
    np.testing.assert_array_equal(h.detach().numpy(), want_h)
    np.testing.assert_array_equal(c.detach().numpy(), want_c)


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("quirk", [False, True])
def test_output_stack_equals_numpy_with_padding(layers, bidirectional, quirk):
    torch.manual_seed(7)
    stack = OutputSpikingLSTM(
        5, 8, layers, bidirectional, threshold=0.1, zero_state_quirk=quirk
    ).double()
    x = _inputs(8, 3, 5, seed=5)
    lengths = [8, 3, 5]
    n = layers * stack.num_directions
    rng = np.random.default_rng(6)
    h0, c0 = rng.normal(size=(n, 3, 8)) * 0.5, rng.normal(size=(n, 3, 8))
    y, (h, c) = stack(
        torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)), lengths=lengths
    )
    want_y, want_h, want_c = np_stack(np_output_step, stack, x, lengths, h0, c0, quirk=quirk)
    assert 0 < want_y.sum() < want_y.size
    np.testing.assert_array_equal(y.detach().numpy(), want_y)
    np.testing.assert_allclose(h.detach().numpy(), want_h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.detach().numpy(), want_c, rtol=0, atol=1e-12)


def test_zero_state_quirk_only_acts_when_input_and_hidden_sizes_differ():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 4)
    same = OutputSpikingLSTM(4, 4, threshold=0.0)
    same_quirk = OutputSpikingLSTM(4, 4, threshold=0.0, zero_state_quirk=True)
    same_quirk.load_state_dict(same.state_dict())
    torch.testing.assert_close(same(x)[1][0], same_quirk(x)[1][0])
    torch.manual_seed(0)
    diff = OutputSpikingLSTMCell(4, 3, zero_state_quirk=True)
    s1, st1 = diff(x[0])
    s2, st2 = diff(x[0], st1)  # the carried state is ignored: same input, same result
    torch.testing.assert_close(st1[0], st2[0])


def test_padded_batch_equals_each_sequence_run_alone():
    torch.manual_seed(0)
    stack = OutputSpikingLSTM(3, 5, num_layers=2, bidirectional=True, threshold=0.0)
    x = torch.randn(6, 3, 3)
    lengths = [6, 2, 4]
    y, (h, c) = stack(x, lengths=lengths)
    for b, n in enumerate(lengths):
        yb, (hb, cb) = stack(x[:n, b : b + 1])
        torch.testing.assert_close(y[:n, b : b + 1], yb)
        torch.testing.assert_close(h[:, b : b + 1], hb)
        torch.testing.assert_close(c[:, b : b + 1], cb)
        assert bool((y[n:, b] == 0).all())


def test_stack_rejects_bad_shapes_and_lengths():
    stack = GateSpikingLSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="time first"):
        stack(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="lengths must lie"):
        stack(torch.zeros(5, 2, 3), lengths=[6, 1])
    with pytest.raises(ValueError, match="lengths must have shape"):
        stack(torch.zeros(5, 2, 3), lengths=[5])
    with pytest.raises(ValueError, match="state"):
        stack(torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="dropout"):
        GateSpikingLSTM(3, 4, dropout=1.0)


def test_spike_counts_are_nonzero_outputs_over_real_positions():
    torch.manual_seed(0)
    stack = GateSpikingLSTM(4, 6, num_layers=2, bidirectional=True).double()
    x = _inputs(7, 3, 4, seed=9)
    lengths = [7, 2, 5]
    y, _ = stack(torch.from_numpy(x), lengths=lengths)
    want, _, _ = np_stack(np_gate_step, stack, x, lengths, np.zeros((4, 3, 6)), np.zeros((4, 3, 6)))
    stats = stack.spike_stats()
    assert stats["positions"] == [14, 14]
    assert stats["neuron_steps"] == [14 * 12, 14 * 12]
    # Layer 0's spikes are the input of layer 1; the last layer's are the outputs.
    assert stats["spikes"][1] == int((want != 0).sum())
    assert stack.spike_rate() == pytest.approx(sum(stats["spikes"]) / (2 * 14 * 12))


def test_dropout_acts_between_layers_in_training_only():
    torch.manual_seed(0)
    stack = AnalogLSTM(3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    stack.train()
    a, b = stack(x)[0], stack(x)[0]
    assert not torch.equal(a, b)
    stack.eval()
    torch.testing.assert_close(stack(x)[0], stack(x)[0])


# ----------------------------------------------------------------------------- training


def test_gradients_reach_weights_threshold_and_surrogate_parameters():
    torch.manual_seed(0)
    stack = OutputSpikingLSTM(4, 6, num_layers=2, threshold=0.0)
    y, (h, _) = stack(torch.randn(5, 3, 4))
    (y.sum() + h.sum()).backward()
    for name, p in stack.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    names = dict(stack.named_parameters())
    assert "cells.0.threshold" in names and "cells.1.surrogate.a" in names


def test_gradients_reach_gate_cell_weights_through_the_surrogate():
    torch.manual_seed(0)
    stack = GateSpikingLSTM(4, 16, num_layers=2, bidirectional=True)
    y, _ = stack(torch.randn(8, 3, 4) * 3, lengths=[8, 4, 2])
    y.sum().backward()
    for name, p in stack.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


class _Mask(torch.nn.Module):
    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


@pytest.mark.parametrize("cls", [GateSpikingLSTM, OutputSpikingLSTM])
def test_parametrized_masks_hold_through_training(cls):
    torch.manual_seed(0)
    kwargs = {"threshold": 0.0} if cls is OutputSpikingLSTM else {}
    stack = cls(4, 6, num_layers=2, **kwargs)
    masks = {}
    for layer, cell in enumerate(stack.cells):
        for name in ("linear_ih", "linear_hh"):
            lin = getattr(cell, name)
            mask = (torch.rand_like(lin.weight) > 0.5).float()
            parametrize.register_parametrization(lin, "weight", _Mask(mask))
            masks[(layer, name)] = (mask, lin.weight.detach().clone())
    head = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD([*stack.parameters(), *head.parameters()], lr=0.5)
    x, target = torch.randn(6, 8, 4) * 3, torch.randn(8, 1)
    for _ in range(5):
        opt.zero_grad()
        y, _ = stack(x, lengths=[6, 5, 4, 3, 6, 2, 1, 6])
        loss = ((head(y[-1]) - target) ** 2).mean() + y.mean()
        loss.backward()
        opt.step()
    for (layer, name), (mask, before) in masks.items():
        w = getattr(stack.cells[layer], name).weight  # the effective (masked) weight
        assert bool((w[mask == 0] == 0).all()), (layer, name)
        changed = (w != before)[mask == 1]
        # Columns fed by neurons that never spiked get no gradient (sparse in layer 1).
        assert bool(changed.any()), (layer, name)
        if layer == 0:
            assert float(changed.float().mean()) > 0.25, name
