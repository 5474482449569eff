"""The translator: padding masks (faithful=False), teacher-forced == step-by-step, DyT, stats."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.dyt import DyT
from nmt.translator import Translator

KINDS = ("output", "gate", "analog")


def batch():
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, 40, (3, 8), generator=g)
    src_len = torch.tensor([8, 5, 2])
    for b, n in enumerate(src_len.tolist()):
        src[b, n:] = 0
    tgt = torch.randint(4, 50, (3, 6), generator=g)
    tgt[:, 0] = 1
    return src, src_len, tgt


def model(kind: str, faithful: bool = False, layers: int = 2) -> Translator:
    torch.manual_seed(1)
    m = Translator(40, 50, embed=12, hidden=16, layers=layers, dropout=0.0, kind=kind,
                   faithful=faithful)  # fmt: skip
    if kind == "output":
        # Lower thresholds so the cells actually spike (h < 1 never crosses the initial 1.0).
        for mod in m.modules():
            if hasattr(mod, "threshold") and isinstance(mod.threshold, torch.nn.Parameter):
                mod.threshold.data.fill_(0.0)
    return m.eval()


@pytest.mark.parametrize("kind", KINDS)
def test_padded_batch_gives_each_sentence_its_own_outputs(kind):
    m = model(kind)
    src, src_len, tgt = batch()
    logits = m(src, src_len, tgt)
    for b in range(3):
        n = int(src_len[b])
        alone = m(src[b : b + 1, :n], src_len[b : b + 1], tgt[b : b + 1])
        torch.testing.assert_close(alone, logits[b : b + 1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ("output", "analog"))
def test_faithful_mode_lets_padding_change_outputs(kind):
    m = model(kind, faithful=True)
    src, src_len, tgt = batch()
    logits = m(src, src_len, tgt)
    alone = m(src[2:3, :2], src_len[2:3], tgt[2:3])
    assert (alone - logits[2:3]).abs().max() > 1e-4


def test_backward_direction_reverses_within_each_length():
    m = model("analog", layers=1)
    src, src_len, tgt = batch()
    # Changing a padded position must not change anything when masks are on.
    src2 = src.clone()
    src2[2, 5] = 7
    torch.testing.assert_close(m(src, src_len, tgt), m(src2, src_len, tgt))
    mf = model("analog", faithful=True, layers=1)
    assert (mf(src, src_len, tgt) - mf(src2, src_len, tgt)).abs().max() > 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_teacher_forced_logits_equal_step_by_step_decoder(kind):
    m = model(kind)
    src, src_len, tgt = batch()
    logits = m(src, src_len, tgt)
    enc = m.encode(src, src_len)
    states = m.decoder.init_state(enc)
    steps = []
    for t in range(tgt.shape[1]):
        step_logits, states = m.decoder.step(tgt[:, t], states, enc)
        steps.append(step_logits)
    torch.testing.assert_close(torch.stack(steps, 1), logits, atol=1e-5, rtol=1e-5)


def test_scheduled_sampling_feeds_predictions_when_the_coin_says_so():
    import numpy as np

    m = model("analog")
    src, src_len, tgt = batch()
    full = m(src, src_len, tgt, teacher_forcing=1.0)
    never = m(src, src_len, tgt, teacher_forcing=0.0, rng=np.random.default_rng(0))
    torch.testing.assert_close(never[:, 0], full[:, 0])  # step 0 always reads [BOS]
    assert (never[:, 2:] - full[:, 2:]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="rng"):
        m(src, src_len, tgt, teacher_forcing=0.5)


def test_dyt_formula_and_initial_identity_to_tanh():
    d = DyT(4)
    x = torch.linspace(-2, 2, 8).reshape(2, 4)
    torch.testing.assert_close(d(x), torch.tanh(x))
    with torch.no_grad():
        d.alpha.fill_(0.3)
        d.gamma.fill_(-0.2)
        d.beta.fill_(0.5)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    torch.testing.assert_close(d(x), sp(-0.2) * torch.tanh(sp(0.3) * x) + 0.5)


def test_spike_rates_and_operation_counts():
    src, src_len, tgt = batch()
    counts = {}
    for kind in KINDS:
        m = model(kind)
        m.set_tracking(True)
        m(src, src_len, tgt)
        rates = m.spike_rates()
        counts[kind] = m.operation_counts()
        assert set(rates) == {"encoder.fwd", "encoder.bwd", "encoder.0", "encoder.1",
                              "decoder.0", "decoder.1"}  # fmt: skip
        assert all(0.0 <= r <= 1.0 for r in rates.values())
        # positions counted: encoder layers see the 15 real source tokens, decoder 18 targets
        assert m.encoder.layers[0].position_sum == 15
        assert m.decoder.layers[0].position_sum == 18
        if kind != "analog":
            assert 0.0 < rates["encoder.0"] < 1.0
    assert counts["analog"]["acs"] == 0
    assert counts["output"]["acs"] > 0 and counts["gate"]["acs"] > 0
    assert counts["gate"]["macs"] < counts["output"]["macs"] < counts["analog"]["macs"]
    assert counts["output"]["target_positions"] == 18


def test_analog_operation_counts_by_hand_leave_out_the_last_encoder_layers_output():
    m = model("analog", layers=1)
    src, src_len, tgt = batch()
    m.set_tracking(True)
    m(src, src_len, tgt)
    H, E = 16, 12

    def layer(n, d, output):  # W_ih, W_hh, then W_l and the mixer when the layer has an output
        return n * (d * 4 * H + H * 4 * H) + output * n * (H * H + (H + d) * H)

    attn = m.decoder.attention[0]
    expected = (
        2 * layer(15, E, 1)  # encoder directions
        + layer(15, 2 * H, 0)  # the stack layer: its h and state are all the decoder reads
        + layer(18, E, 1)  # decoder
        + attn.query_sum * H * H + 2 * attn.key_sum * H
        + 18 * 2 * H * 50  # logits
    )  # fmt: skip
    assert m.operation_counts()["macs"] == expected
    assert not hasattr(m.encoder.layers[0], "mixer") and hasattr(m.decoder.layers[0], "mixer")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", (1, 2))
def test_every_parameter_gets_a_gradient_from_the_loss(kind, layers):
    m = model(kind, layers=layers).train()
    src, src_len, tgt = batch()
    m(src, src_len, tgt).logsumexp(-1).sum().backward()
    dead = [n for n, p in m.named_parameters() if p.grad is None]
    # The one exception: the output-spiking cell of the encoder's last layer, whose spikes feed
    # nothing (its analog h and state do), leaves its spike function's threshold and surrogate
    # shape untrained.
    last = f"encoder.layers.{layers - 1}.cell"
    spike_fn = [f"{last}.threshold", f"{last}.surrogate.a", f"{last}.surrogate.b"]
    assert dead == (spike_fn if kind == "output" else [])


def test_gradient_reaches_threshold_and_surrogate():
    m = model("output").train()
    src, src_len, tgt = batch()
    m(src, src_len, tgt).logsumexp(-1).sum().backward()
    cell = m.encoder.layers[0].cell
    assert cell.threshold.grad is not None and cell.threshold.grad.abs() > 0
    assert cell.linear_hh.weight.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        Translator(10, 10, kind="binary")
    with pytest.raises(ValueError, match="hidden"):
        Translator(10, 10, hidden=0)
    with pytest.raises(ValueError, match="dropout"):
        Translator(10, 10, dropout=1.0)


@pytest.mark.parametrize("kind", ("analog", pytest.param("output", marks=pytest.mark.slow)))
def test_learns_to_copy_random_sequences_through_attention(kind):
    """The only way to copy an unseen random sequence is through the encoder and attention."""
    torch.manual_seed(0)
    vocab, length, batch_size = 16, 4, 32
    m = Translator(vocab, vocab, embed=32, hidden=32, layers=1, dropout=0.0, kind=kind)
    opt = torch.optim.Adam(m.parameters(), lr=2e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)

    def sample():
        src = torch.randint(4, vocab, (batch_size, length), generator=g)
        bos, eos = torch.ones(batch_size, 1, dtype=torch.long), torch.full((batch_size, 1), 2)
        return src, torch.cat([bos, src, eos], 1)

    for _ in range(150):
        src, tgt = sample()
        logits = m(src, torch.full((batch_size,), length), tgt[:, :-1])
        loss = loss_fn(logits.reshape(-1, vocab), tgt[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    src, tgt = sample()
    with torch.no_grad():
        pred = m.eval()(src, torch.full((batch_size,), length), tgt[:, :-1]).argmax(-1)
    assert (pred == tgt[:, 1:]).float().mean() > 0.9


def test_memoryless_stack_layer_sees_only_the_current_position():
    torch.manual_seed(0)
    from nmt.layers import SpikingLayer

    layer = SpikingLayer(6, 5, dropout=0.0, kind="analog").eval()
    layer.memoryless = True
    x = torch.randn(4, 2, 6)
    y, h, c, _ = layer.forward_seq(x)
    for t in range(4):
        y1, h1, c1, _ = layer.forward_seq(x[t : t + 1])
        torch.testing.assert_close(h[t], h1[0])
        torch.testing.assert_close(y[t], y1[0])
    layer.memoryless = False
    _, h_mem, _, _ = layer.forward_seq(x)
    assert not torch.allclose(h_mem[1:], h[1:])  # with memory, later steps differ


def test_stack_memory_switch_reaches_only_the_encoder_stack():
    m = Translator(20, 20, embed=8, hidden=8, layers=2, stack_memory=False)
    assert all(layer.memoryless for layer in m.encoder.layers)
    assert not m.encoder.forward_layer.memoryless and not m.encoder.backward_layer.memoryless
    assert not any(layer.memoryless for layer in m.decoder.layers)
