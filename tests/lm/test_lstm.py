from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

from lm.lstm import MaskableLSTM


class Mask(nn.Module):
    """What a pruning pass registers: weight seen in forward = mask * raw weight."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


def _reference(layer: MaskableLSTM) -> nn.LSTM:
    ref = nn.LSTM(layer.input_size, layer.hidden_size)
    with torch.no_grad():
        w = layer.weight
        ref.weight_ih_l0.copy_(w[:, : layer.input_size])
        ref.weight_hh_l0.copy_(w[:, layer.input_size :])
        ref.bias_ih_l0.copy_(layer.bias_ih)
        ref.bias_hh_l0.copy_(layer.bias_hh)
    return ref


@settings(max_examples=15, deadline=None)
@given(inp=st.integers(1, 9), hid=st.integers(1, 9), seq=st.integers(1, 6), batch=st.integers(1, 4))
def test_matches_nn_lstm_outputs_and_gradients(inp: int, hid: int, seq: int, batch: int) -> None:
    torch.manual_seed(inp * 100 + hid)
    layer = MaskableLSTM(inp, hid, wdrop=0.5).eval()
    ref = _reference(layer).eval()
    x = torch.randn(seq, batch, inp)
    h0 = (torch.randn(1, batch, hid), torch.randn(1, batch, hid))
    out, (h, c) = layer(x, h0)
    rout, (rh, rc) = ref(x, h0)
    torch.testing.assert_close(out, rout)
    torch.testing.assert_close(c, rc)
    (out.sum() + c.sum()).backward()
    (rout.sum() + rc.sum()).backward()
    grad = torch.cat([ref.weight_ih_l0.grad, ref.weight_hh_l0.grad], dim=1)
    torch.testing.assert_close(layer.weight.grad, grad)
    torch.testing.assert_close(layer.bias_hh.grad, ref.bias_hh_l0.grad)


def test_exposes_the_fused_target_contract() -> None:
    layer = MaskableLSTM(3, 5)
    assert layer.lstmpack_kind == "lstm"
    assert (layer.input_size, layer.hidden_size) == (3, 5)
    names = dict(layer.named_parameters())
    assert set(names) == {"weight", "bias_ih", "bias_hh"}
    assert names["weight"].shape == (20, 8)
    assert names["bias_ih"].shape == names["bias_hh"].shape == (20,)


def test_masked_entries_stay_zero_while_unmasked_train_and_raw_weights_get_gradients() -> None:
    torch.manual_seed(0)
    layer = MaskableLSTM(6, 8, wdrop=0.3)
    mask = (torch.rand(32, 14) > 0.5).float()
    parametrize.register_parametrization(layer, "weight", Mask(mask))
    raw = layer.parametrizations.weight.original
    before = raw.detach().clone()
    # weight decay and Adam would move masked raw entries if any gradient leaked into them
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=0.0)
    x = torch.randn(7, 3, 6)
    for _ in range(5):
        opt.zero_grad()
        out, _ = layer(x)
        out.pow(2).sum().backward()
        assert raw.grad is not None
        assert torch.count_nonzero(raw.grad[mask == 0]) == 0
        assert torch.count_nonzero(raw.grad[mask == 1]) > 0
        opt.step()
    eff = layer.weight.detach()
    assert torch.count_nonzero(eff[mask == 0]) == 0
    changed = (raw.detach() != before)[mask == 1]
    assert changed.float().mean() > 0.95


def test_forward_reads_weight_afresh_so_a_later_parametrization_applies() -> None:
    torch.manual_seed(1)
    layer = MaskableLSTM(4, 4).eval()
    x = torch.randn(5, 2, 4)
    dense, _ = layer(x)
    parametrize.register_parametrization(layer, "weight", Mask(torch.zeros(16, 8)))
    masked, _ = layer(x)
    assert not torch.allclose(dense, masked)
    # all weights zero: gates are sigmoid/tanh of the biases only, identical at every step
    torch.testing.assert_close(masked[0], _reference(layer)(x)[0][0])


def test_weight_drop_is_active_in_train_and_off_in_eval() -> None:
    torch.manual_seed(2)
    layer = MaskableLSTM(4, 6, wdrop=0.5)
    x = torch.randn(8, 3, 4)
    layer.train()
    a, _ = layer(x)
    b, _ = layer(x)
    assert not torch.allclose(a, b)  # a new DropConnect mask per forward
    layer.eval()
    c, _ = layer(x)
    d, _ = layer(x)
    torch.testing.assert_close(c, d)
    torch.testing.assert_close(c, _reference(layer).eval()(x)[0])
    # the input weights are never dropped: with a zero W_hh, train == eval
    with torch.no_grad():
        layer.weight[:, 4:] = 0
    layer.train()
    torch.testing.assert_close(layer(x)[0], layer.eval()(x)[0])


def test_weight_drop_drops_recurrent_weights_at_the_configured_rate_only() -> None:
    torch.manual_seed(3)
    layer = MaskableLSTM(5, 64, wdrop=0.25).train()
    h0 = (torch.randn(1, 4, 64), torch.randn(1, 4, 64))
    out, _ = layer(torch.randn(6, 4, 5), h0)
    out.sum().backward()
    g_ih, g_hh = layer.weight.grad[:, :5], layer.weight.grad[:, 5:]
    # a dropped entry of W_hh gets exactly zero gradient; a kept one almost surely does not
    assert 0.22 < (g_hh == 0).float().mean().item() < 0.28
    assert (g_ih == 0).float().mean().item() < 0.01


def test_forget_bias_sets_only_the_f_gate_block_and_none_keeps_uniform_init() -> None:
    torch.manual_seed(0)
    layer = MaskableLSTM(3, 5, forget_bias=1.0)
    bias = layer.bias_ih + layer.bias_hh  # what the gates see
    f = slice(5, 10)  # gate order i, f, g, o
    torch.testing.assert_close(bias[f], torch.ones(5))
    others = torch.cat([bias[:5], bias[10:]])
    assert others.abs().max() <= 2 / 5**0.5  # still the uniform +-1/sqrt(H) draws
    assert not torch.allclose(others, torch.ones(15))
    torch.manual_seed(0)
    plain = MaskableLSTM(3, 5)
    assert plain.forget_bias is None
    torch.testing.assert_close(plain.weight, layer.weight)  # the bias change draws no numbers
    assert plain.bias_ih[f].abs().max() <= 1 / 5**0.5
