"""--balance, --keep saliency and --reconstruct: the selections, the calibration inputs, the
saliency score and the least-squares re-solve, on made matrices and a toy LSTM model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compress.calibration import (
    Gram,
    Saliency,
    check_calibration_targets,
    collect_grams,
    damping,
    target_inputs,
)
from compress.config import CombineConfig, PruneConfig
from compress.passes.combine import CombinePass
from compress.passes.combining import combine
from compress.passes.finalize import masked_weight
from compress.passes.prune import PrunePass, balanced_keep, magnitude_keep, prune_target
from compress.pipeline import Pipeline, mask_of
from compress.reconstruct import CalibratedEvents, calibration_error, solve_rows
from compress.schedule import Schedule
from compress.targets import find_targets
from lm.lstm import MaskableLSTM
from tests.compress.test_pipeline import Toy

SETTINGS = settings(max_examples=40, deadline=None)


def _scores(rows, cols, seed, ties=False):
    g = np.random.default_rng(seed)
    x = g.integers(0, 4, (rows, cols)) if ties else g.random((rows, cols))
    return torch.from_numpy(x.astype(np.float32))


# --------------------------------------------------------------------------- --balance


@SETTINGS
@given(st.integers(1, 12), st.integers(2, 30), st.floats(0, 1), st.integers(0, 99), st.booleans())
def test_row_balance_keeps_the_same_share_per_row_and_no_row_empty_below_1_minus_1_over_cols(
    rows, cols, share, seed, ties
):
    sparsity = share * (1 - 1 / cols) * 0.999  # < 1 - 1/cols
    keep = balanced_keep(_scores(rows, cols, seed, ties), sparsity, "row", (0, rows))
    kept = keep.sum(dim=1)
    assert (kept == cols - round(sparsity * cols)).all()
    assert (kept >= 1).all()


def test_row_balance_drops_each_rows_smallest_scores_lowest_column_first_on_ties():
    scores = torch.tensor([[3.0, 1.0, 2.0, 1.0], [0.0, 0.0, 5.0, 4.0]])
    keep = balanced_keep(scores, 0.5, "row", (0, 2))
    assert keep.tolist() == [[True, False, True, False], [False, False, True, True]]


def test_gate_balance_prunes_each_gate_block_to_the_rate():
    scores = _scores(40, 16, 3)
    scores[10:20] += 100  # the forget block would keep everything under one threshold
    keep = balanced_keep(scores, 0.75, "gate", (0, 10, 20, 30, 40))
    assert [int(keep[lo : lo + 10].sum()) for lo in (0, 10, 20, 30)] == [40] * 4
    assert int(magnitude_keep(scores, 0.75)[10:20].sum()) == 160


def test_gate_aware_is_gate_balance_and_default_balance_is_one_threshold():
    t = find_targets(Toy())[0]
    scores = _scores(t.rows, t.cols, 5, ties=True)
    gate = balanced_keep(scores, 0.6, "gate", t.row_blocks)
    assert torch.equal(prune_target(t, scores, 0.6, gate_aware=True), gate)
    assert torch.equal(prune_target(t, scores, 0.6, False, balance="gate"), gate)
    assert torch.equal(prune_target(t, scores, 0.6, False), magnitude_keep(scores, 0.6))
    row = balanced_keep(scores, 0.6, "row", t.row_blocks)
    assert torch.equal(prune_target(t, scores, 0.6, True, balance="row"), row)


def _event(model, passes, hooks=None):
    pipe = Pipeline(passes, Schedule(kind="one-shot"))
    pipe.prepare(model)
    if hooks is not None:
        hooks.attach(pipe)
    pipe.apply_event(1)
    return pipe


@pytest.mark.parametrize("alpha", [2, 3, 6])
def test_combine_with_row_balance_leaves_no_lstm_row_empty(alpha):
    torch.manual_seed(0)
    model = Toy()
    pipe = _event(model, [CombinePass(CombineConfig(max_paths=alpha, gamma=1.0, balance="row"))])
    for t in pipe.targets:
        w = masked_weight(t)
        assert ((w != 0).sum(dim=1) >= 1).all(), t.name


def test_prune_pass_with_row_balance_prunes_every_row_to_the_rate():
    pipe = _event(Toy(), [PrunePass(PruneConfig(final_sparsity=0.5, balance="row"))])
    for t in pipe.targets:
        assert ((mask_of(t) != 0).sum(dim=1) == t.cols - round(0.5 * t.cols)).all()


def test_balance_and_keep_values_are_checked_by_name():
    with pytest.raises(ValueError, match="--balance must be one of none, gate, row; got 'col'"):
        CombineConfig(max_paths=2, balance="col")
    with pytest.raises(ValueError, match="--keep must be one of magnitude, saliency"):
        PruneConfig(keep="random")
    with pytest.raises(ValueError, match="kind must be 'saliency' or 'activation'"):
        Saliency("magnitude")


# --------------------------------------------------------------------------- calibration inputs


def test_lstm_calibration_columns_are_x_t_over_h_t_minus_1_with_the_hidden_handed_in():
    torch.manual_seed(1)
    lstm = MaskableLSTM(3, 4)
    x = torch.randn(5, 2, 3)
    h0, c0 = torch.randn(1, 2, 4), torch.randn(1, 2, 4)
    out, _ = lstm(x, (h0, c0))
    t = find_targets(lstm)[0]
    X = target_inputs(t, (x, (h0, c0)), {}, (out, None)).reshape(5, 2, 7)
    # the recurrence driven by W @ X alone reproduces the layer's outputs
    c = c0[0]
    for step in range(5):
        gates = X[step] @ lstm.weight.T + lstm.bias_ih + lstm.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        torch.testing.assert_close(h, out[step])


def _source(model, n_batches=4, seed=0):
    """A calibration source as ModelSpec.calibration gives one: eval-mode forward passes."""
    g = torch.Generator().manual_seed(seed)
    batches = [torch.randint(0, 11, (7, 3), generator=g) for _ in range(n_batches)]

    def source():
        def run_batch(x):
            model.eval()
            model(x)

        return run_batch, batches

    return source


def test_collect_grams_sums_x_x_transposed_over_every_call_and_restores_train_mode():
    torch.manual_seed(2)
    model = Toy()
    model.train()
    targets = find_targets(model, pattern=r"^(rnns\.0|dec)$")
    seen: list[torch.Tensor] = []
    handle = model.dec.register_forward_hook(lambda m, a, o: seen.append(a[0].reshape(-1, 6)))
    grams = collect_grams(model, targets, _source(model))
    handle.remove()
    X = torch.cat(seen).double()
    torch.testing.assert_close(grams["dec"].H, X.T @ X)
    assert grams["dec"].samples == grams["rnns.0"].samples == 4 * 7 * 3
    assert grams["rnns.0"].H.shape == (16, 16)
    assert model.training


def test_an_embedding_target_has_no_calibration_inputs_and_is_refused_by_name():
    targets = find_targets(Toy(), pattern=r"^(emb|rnns\.0)$")
    with pytest.raises(ValueError, match="--reconstruct needs .* target 'emb' is an embedding"):
        check_calibration_targets(targets, "--reconstruct")


# --------------------------------------------------------------------------- --keep saliency


@pytest.mark.parametrize("kind", ["saliency", "activation"])
def test_saliency_is_obs_and_activation_is_w_squared_times_the_input_energy(kind):
    g = np.random.default_rng(4)
    X = g.normal(size=(6, 50)) * g.random((6, 1))
    H = X @ X.T
    sal = Saliency(kind)
    t = find_targets(nn.Sequential(nn.Linear(6, 3)), pattern="0")[0]
    sal.refresh({t.name: Gram(torch.from_numpy(H), 50)})
    w = g.normal(size=(3, 6))
    lam = 1e-2 * np.mean(np.diag(H))
    if kind == "saliency":  # w^2 / [(H + lambda I)^-1]_jj
        want = w**2 / np.diag(np.linalg.inv(H + lam * np.eye(6)))[None, :]
    else:  # (|w| ||x_j||)^2
        want = (np.abs(w) * np.linalg.norm(X, axis=1)[None, :]) ** 2
    np.testing.assert_allclose(sal(t, torch.from_numpy(w)).numpy(), want, rtol=1e-10)


@SETTINGS
@given(
    st.integers(0, 999),
    st.sampled_from(["none", "gate", "row"]),
    st.floats(0.1, 0.9),
    st.sampled_from(["saliency", "activation"]),
)
def test_with_identity_h_saliency_keeps_the_largest_magnitudes(seed, balance, sparsity, kind):
    model = Toy()
    torch.manual_seed(seed)
    for t in find_targets(model):
        t.raw().data.normal_()
    base = _event(copy.deepcopy(model), [PrunePass(PruneConfig(sparsity, balance=balance))])
    sal_model = copy.deepcopy(model)
    prune = PrunePass(PruneConfig(sparsity, balance=balance, keep=kind))
    sal = Saliency(kind)
    sal.refresh({t.name: Gram(torch.eye(t.cols, dtype=torch.float64)) for t in find_targets(model)})
    prune.scorer = sal
    got = _event(sal_model, [prune])
    for a, b in zip(base.targets, got.targets):
        assert torch.equal(mask_of(a), mask_of(b))
        # and the keep-one rule of combining picks the same weight in every (row, group)
        w = a.raw().detach()
        ptr, cols = np.array([0, 3, 5, a.cols]), np.arange(a.cols)
        by_mag = combine(w.abs().numpy(), ptr, cols)[1]
        by_sal = combine(sal(a, w).numpy(), ptr, cols)[1]
        np.testing.assert_array_equal(by_mag, by_sal)


def test_saliency_event_scores_on_calibration_inputs_and_records_its_cost():
    torch.manual_seed(3)
    model = Toy()
    cfg = CombineConfig(max_paths=3, gamma=1.0, keep="saliency", balance="row")
    hooks = CalibratedEvents(model, _source(model), saliency=Saliency())
    pipe = _event(model, [CombinePass(cfg)], hooks)
    assert pipe.passes[0].scorer is hooks.saliency
    assert set(hooks.saliency.column_weight) == {"rnns.0", "rnns.1"}
    rec = hooks.record()
    assert rec["keep"] == "saliency" and rec["events"] == 1 and rec["calibration_s"] > 0


# --------------------------------------------------------------------------- --reconstruct


@st.composite
def least_squares_problems(draw):
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 9))
    samples = draw(st.integers(1, 40))
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = g.normal(size=(cols, samples)) * g.exponential(size=(cols, 1))
    if draw(st.booleans()):  # collinear inputs: H is singular without the damping
        X[-1] = X[0]
    w = g.normal(size=(rows, cols))
    keep = g.random((rows, cols)) < draw(st.sampled_from([0.0, 0.3, 0.6, 1.0]))
    damp = draw(st.sampled_from([1e-3, 1e-2, 0.1]))
    return X, w, keep, damp


@SETTINGS
@given(least_squares_problems())
def test_solve_rows_is_numpy_least_squares_on_the_kept_columns_with_the_damping(problem):
    X, w, keep, damp = problem
    H = X @ X.T
    got = solve_rows(torch.from_numpy(w), torch.from_numpy(keep), torch.from_numpy(H), damp)
    lam = damping(torch.from_numpy(H), damp)
    for r in range(w.shape[0]):
        S = np.flatnonzero(keep[r])
        want = np.zeros(w.shape[1])
        if len(S):
            # min ||X_S^T v - X^T w||^2 + lam ||v||^2, as one stacked least-squares problem
            A = np.vstack([X[S].T, np.sqrt(lam) * np.eye(len(S))])
            b = np.concatenate([X.T @ w[r], np.zeros(len(S))])
            want[S] = np.linalg.lstsq(A, b, rcond=None)[0]
            masked = w[r] * keep[r]
            if (want - w[r]) @ H @ (want - w[r]) > (masked - w[r]) @ H @ (masked - w[r]):
                want = masked  # documented: never worse than masking alone
        np.testing.assert_allclose(got[r].numpy(), want, rtol=1e-6, atol=1e-8 * np.abs(w).max())


@SETTINGS
@given(least_squares_problems())
def test_solve_rows_never_raises_the_calibration_error_above_masking_alone(problem):
    X, w, keep, damp = problem
    H, w_t, keep_t = torch.from_numpy(X @ X.T), torch.from_numpy(w), torch.from_numpy(keep)
    got = solve_rows(w_t, keep_t, H, damp)
    assert (got[~keep_t] == 0).all()
    assert (calibration_error(got, w_t, H) <= calibration_error(w_t * keep_t, w_t, H)).all()


def test_a_reconstructed_event_keeps_the_toy_model_closer_to_dense_than_masking_alone():
    torch.manual_seed(5)
    dense = Toy()
    cfg = CombineConfig(max_paths=3, gamma=1.0, balance="row")
    masked_model, rec_model = copy.deepcopy(dense), copy.deepcopy(dense)
    masked = _event(masked_model, [CombinePass(cfg)])
    raw_before = [t.raw().detach().clone() for t in find_targets(rec_model)]
    hooks = CalibratedEvents(rec_model, _source(rec_model, 16), reconstruct=True)
    rec = _event(rec_model, [CombinePass(cfg)], hooks)
    for t, m, before in zip(rec.targets, masked.targets, raw_before):
        assert torch.equal(mask_of(t), mask_of(m))  # the same masks, other kept values
        hidden = mask_of(t) == 0
        assert torch.equal(t.raw().detach()[hidden], before[hidden])  # hidden entries untouched
    errors = hooks.record()["relative_calibration_error"]
    assert set(errors) == {"rnns.0", "rnns.1"}
    assert all(e["resolved"] <= e["masked"] for e in errors.values())
    # on held-out inputs, the re-solved LSTM stack's outputs stay closer to the dense ones
    x = torch.randint(0, 11, (7, 16), generator=torch.Generator().manual_seed(9))

    @torch.no_grad()
    def top_lstm_output(model):
        h = model.eval().emb(x)
        for r in model.rnns:
            h, _ = r(h)
        return h

    want = top_lstm_output(dense)
    err_masked = float(((top_lstm_output(masked_model) - want) ** 2).mean())
    err_rec = float(((top_lstm_output(rec_model) - want) ** 2).mean())
    assert err_rec < err_masked
