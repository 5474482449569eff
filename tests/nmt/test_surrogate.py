"""Surrogate spike functions: Heaviside forward, derivative of a smooth primitive backward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.surrogate import ATan, Erf, SpikingParrot, heaviside, make_surrogate


def _finite_difference(fn, u: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return (fn(u + eps) - fn(u - eps)) / (2 * eps)


def _surrogate_grad(sg, u: torch.Tensor) -> torch.Tensor:
    u = u.clone().requires_grad_(True)
    sg(u).sum().backward()
    return u.grad


@pytest.mark.parametrize("cls", [Erf, ATan])
@pytest.mark.parametrize("alpha", [0.5, 2.0, 4.0])
def test_fixed_surrogate_gradient_equals_slope_of_its_primitive(cls, alpha):
    sg = cls(alpha)
    u = torch.linspace(-3, 3, 601, dtype=torch.float64)
    np.testing.assert_allclose(
        _surrogate_grad(sg, u).numpy(), _finite_difference(sg.primitive, u).numpy(), atol=1e-8
    )


def test_erf_gradient_matches_the_closed_form_of_the_issue():
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    want = 2 / math.sqrt(math.pi) * torch.exp(-((2 * u) ** 2))
    np.testing.assert_allclose(_surrogate_grad(Erf(2.0), u).numpy(), want.numpy(), rtol=1e-12)


def test_atan_gradient_matches_snntorch_closed_form():
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    want = 1.0 / (1 + (math.pi * u) ** 2)  # alpha 2: (alpha/2) / (1 + (pi/2 alpha u)^2)
    np.testing.assert_allclose(_surrogate_grad(ATan(2.0), u).numpy(), want.numpy(), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    a=st.floats(-2.0, 2.0),
    b=st.floats(-2.0, 2.0),
    u=st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
)
def test_spikingparrot_gradients_for_u_a_b_equal_slopes_of_its_primitive(a, b, u):
    sg = SpikingParrot(3).double()
    with torch.no_grad():
        sg.a.fill_(a)
        sg.b.fill_(b)
    x = torch.tensor([u], dtype=torch.float64, requires_grad=True)  # [1, 3]: 3 channels
    sg(x).sum().backward()
    eps = 1e-6

    def prim_at(da=0.0, db=0.0, du=0.0):
        with torch.no_grad():
            sg.a += da
            sg.b += db
            out = sg.primitive(x.detach() + du)
            sg.a -= da
            sg.b -= db
        return out

    fd_u = (prim_at(du=eps) - prim_at(du=-eps)) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), fd_u.numpy(), atol=1e-7)
    # a and b are per channel: each channel's gradient is the slope of that channel's primitive.
    fd_a = ((prim_at(da=eps) - prim_at(da=-eps)) / (2 * eps)).sum(0)
    fd_b = ((prim_at(db=eps) - prim_at(db=-eps)) / (2 * eps)).sum(0)
    np.testing.assert_allclose(sg.a.grad.numpy(), fd_a.numpy(), atol=1e-7)
    np.testing.assert_allclose(sg.b.grad.numpy(), fd_b.numpy(), atol=1e-7)


def test_spikingparrot_starts_as_sech_squared():
    sg = SpikingParrot(4)
    assert torch.allclose(torch.nn.functional.softplus(sg.a), torch.ones(4))
    assert torch.allclose(torch.nn.functional.softplus(sg.b), torch.ones(4))
    u = torch.linspace(-2, 2, 8).reshape(2, 4)
    want = 1 / torch.cosh(u) ** 2
    assert torch.allclose(_surrogate_grad(sg, u), want, atol=1e-6)


def test_spikingparrot_sums_channel_gradients_over_batch_and_time():
    sg = SpikingParrot(5)
    u = torch.randn(7, 3, 5)
    sg(u).sum().backward()
    assert sg.a.grad.shape == (5,) and sg.b.grad.shape == (5,)


@pytest.mark.parametrize("sg", [Erf(), ATan(), SpikingParrot(3)])
def test_forward_is_a_heaviside_step_with_the_requested_tie_rule(sg):
    u = torch.tensor([[-1.0, 0.0, 2.0]])
    assert sg(u, strict=False).tolist() == [[0.0, 1.0, 1.0]]
    assert sg(u, strict=True).tolist() == [[0.0, 0.0, 1.0]]


def test_heaviside_keeps_dtype():
    u = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert heaviside(u, strict=False).dtype == torch.float64


def test_make_surrogate_rejects_unknown_names_and_bad_alpha():
    with pytest.raises(ValueError, match="unknown surrogate"):
        make_surrogate("sigmoid", 4)
    with pytest.raises(ValueError, match="alpha"):
        Erf(0.0)
    with pytest.raises(ValueError, match="channels"):
        SpikingParrot(3)(torch.zeros(2, 4))
