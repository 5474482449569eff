"""The biLM: the forward LM at t reads only tokens <= t and the backward LM only tokens >= t
(gradients and perturbations), the one softmax is both directions', the residual connection
joins the layers, the token encoder computed once per distinct token is the per-token one, and
the passes find every LSTM layer (kind lstm, proj_size) and projection (kind proj)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compress.targets import find_targets
from elmo.model import BiLM, build_model
from tests.elmo.conftest import smoke

T, B, V = 7, 3, 23


def _model(**changes) -> BiLM:
    model = build_model(smoke(dropout=0.0, **changes), V)
    return model.eval()


def _chars(seed: int = 0, max_chars: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 261, (T, B, max_chars), generator=g)


def _token_grads(model: BiLM, chars: torch.Tensor, direction: str, t: int) -> torch.Tensor:
    """|d output[t] / d token representation[s]| summed per position s: (T,)."""
    seen: dict[str, torch.Tensor] = {}
    hook = model.encoder.register_forward_hook(lambda m, i, o: seen.setdefault("x", o))
    try:
        out = model(chars)
    finally:
        hook.remove()
    (grad,) = torch.autograd.grad(getattr(out, direction)[t].sum(), seen["x"])
    return grad.abs().sum(dim=(1, 2))


@pytest.mark.parametrize("t", [0, 3, T - 1])
def test_the_forward_lm_at_t_depends_on_tokens_up_to_t_only(t):
    g = _token_grads(_model(), _chars(), "fwd", t)
    assert (g[t + 1 :] == 0).all() and (g[: t + 1] > 0).all()


@pytest.mark.parametrize("t", [0, 3, T - 1])
def test_the_backward_lm_at_t_depends_on_tokens_from_t_on_only(t):
    g = _token_grads(_model(), _chars(), "bwd", t)
    assert (g[:t] == 0).all() and (g[t:] > 0).all()


def test_changing_later_tokens_leaves_earlier_forward_outputs_and_vice_versa():
    model, chars, new = _model(), _chars(), _chars(seed=1)
    late, early = chars.clone(), chars.clone()
    late[4:], early[:4] = new[4:], new[:4]  # tokens 4.. differ; tokens 0..3 differ
    with torch.no_grad():
        a, b, c = model(chars), model(late), model(early)
    assert torch.allclose(a.fwd[:4], b.fwd[:4], atol=1e-6)
    assert not torch.allclose(a.fwd[4:], b.fwd[4:], atol=1e-3)
    assert torch.allclose(a.bwd[4:], c.bwd[4:], atol=1e-6)
    assert not torch.allclose(a.bwd[:4], c.bwd[:4], atol=1e-3)


def test_one_softmax_scores_both_directions():
    model = _model()
    vocab_sized = [n for n, p in model.named_parameters() if p.shape[0] == V]
    assert vocab_sized == ["softmax.weight", "softmax.bias"]
    out = model(_chars())
    targets = torch.randint(0, V, (T, B))
    for direction in ("fwd", "bwd"):
        model.zero_grad()
        model.nll(getattr(out, direction), targets).backward(retain_graph=True)
        assert model.softmax.weight.grad.abs().sum() > 0
        other = "bwd_lstm" if direction == "fwd" else "fwd_lstm"
        assert all(p.grad is None or not p.grad.any() for p in getattr(model, other).parameters())


def test_the_second_layer_adds_the_first_layers_output():
    model = _model()
    x = torch.randn(T, B, model.cfg.proj)
    l0, l1 = model.fwd_lstm
    with torch.no_grad():
        out, _ = model.run("fwd", x)
        h0, _ = l0(x)
        h1, _ = l1(h0)
    assert torch.allclose(out, h1 + h0, atol=1e-6)
    plain = _model(residual=False)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(plain.run("fwd", x)[0], h1, atol=1e-6)


def test_the_encoder_once_per_distinct_token_is_the_per_token_encoder():
    model = _model()
    chars = _chars()
    chars[2:4] = chars[0:2]  # repeated tokens
    enc = model.encoder
    with torch.no_grad():
        batched = enc(chars)
        one_by_one = torch.stack([
            torch.stack([enc.projection(enc.highway(enc.char_cnn(chars[t, b : b + 1])))[0]
                         for b in range(B)]) for t in range(T)
        ])  # fmt: skip
    assert batched.shape == (T, B, model.cfg.proj)
    assert torch.allclose(batched, one_by_one, atol=1e-6)


def test_the_passes_find_every_lstm_layer_and_projection_of_both_directions():
    model = _model()
    targets = {t.name: t for t in find_targets(model)}
    names = [f"{d}_lstm.{k}{p}" for d in ("fwd", "bwd") for k in (0, 1) for p in ("", ".proj")]
    assert sorted(targets) == sorted(names)
    cfg = model.cfg
    for name, t in targets.items():
        if name.endswith(".proj"):
            assert t.kind == "proj" and (t.rows, t.cols) == (cfg.proj, cfg.hidden)
        else:
            assert t.kind == "lstm" and (t.rows, t.cols) == (4 * cfg.hidden, 2 * cfg.proj)
            assert t.col_splits == (0, cfg.proj, 2 * cfg.proj)  # recurrent columns: proj_size


def test_a_container_named_by_targets_is_refused_naming_its_layers():
    with pytest.raises(ValueError, match="names module 'fwd_lstm', which holds targets but is "
                                         "not one: name its layers instead"):  # fmt: skip
        find_targets(_model(), "fwd_lstm$")


def test_the_same_config_builds_the_same_weights():
    a, b = build_model(smoke(), V), build_model(smoke(), V)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    c = build_model(smoke(seed=1), V)
    assert not torch.equal(a.softmax.weight, c.softmax.weight)
    assert isinstance(a.softmax, nn.Linear)
