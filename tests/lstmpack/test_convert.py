"""lstmpack.convert / unconvert and the maskable LSTM / GRU stacks: the same function as
nn.LSTM / nn.GRU (float64, random shapes, outputs, final states and every gradient within 1e-12),
state dicts both ways, the refusals, and what the passes see of a converted model."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from compress.calibration import collect_grams
from compress.packing import unpack_dense
from compress.passes.finalize import masked_weight
from compress.pipeline import Pipeline
from compress.schedule import Schedule
from compress.targets import find_targets
from hwsim.workload import from_packed_json
from lstmpack.conversion import convert, unconvert
from lstmpack.rnn import GRU, LSTM

TOL = 1e-12


def _configs(mode: str, n: int, seed: int) -> list[dict]:
    """n random constructor arguments (and input sizes) of nn.LSTM / nn.GRU."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        hidden = rng.randint(2, 7)
        cfg = {
            "input_size": rng.randint(1, 6),
            "hidden_size": hidden,
            "num_layers": rng.randint(1, 3),
            "bias": rng.random() < 0.8,
            "batch_first": rng.random() < 0.5,
            "bidirectional": rng.random() < 0.5,
            "dropout": rng.choice([0.0, 0.0, 0.4]),
            "seq": rng.randint(1, 6),
            "batch": rng.randint(1, 4),
        }
        if cfg["num_layers"] == 1:
            cfg["dropout"] = 0.0  # nn.LSTM warns that it would not apply
        if mode == "lstm" and rng.random() < 0.5:
            cfg["proj_size"] = rng.randint(1, hidden - 1)
        out.append(cfg)
    return out


def _pair(mode: str, cfg: dict, seed: int) -> tuple[nn.Module, nn.Module]:
    args = {k: v for k, v in cfg.items() if k not in ("seq", "batch")}
    torch.manual_seed(seed)
    ref = (nn.LSTM if mode == "lstm" else nn.GRU)(**args).double()
    return ref, convert(ref)


def _torch_grads(conv: nn.Module) -> dict[str, torch.Tensor]:
    """The converted module's parameter gradients under nn.LSTM's parameter names."""
    out = {}
    for i, layer in enumerate(conv.layers()):
        d = conv.num_directions
        sfx = f"_l{i // d}" + ("_reverse" if i % d else "")
        g = layer.weight.grad
        out[f"weight_ih{sfx}"] = g[:, : layer.input_size]
        out[f"weight_hh{sfx}"] = g[:, layer.input_size :]
        if conv.bias:
            out[f"bias_ih{sfx}"], out[f"bias_hh{sfx}"] = layer.bias_ih.grad, layer.bias_hh.grad
        if conv.proj_size:
            out[f"weight_hr{sfx}"] = layer.proj.weight.grad
    return out


def _run(module: nn.Module, x: torch.Tensor, hx, seed: int):
    """Outputs and the gradients of a random functional of (output, states) w.r.t. x and hx."""
    x = x.clone().requires_grad_()
    hx = tuple(h.clone().requires_grad_() for h in hx)
    torch.manual_seed(seed)  # the same dropout masks for both modules
    out, state = module(x, hx if len(hx) > 1 else hx[0])
    states = state if isinstance(state, tuple) else (state,)
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    for s in states:
        loss = loss + (s.tanh() * torch.randn(s.shape, generator=g, dtype=s.dtype)).sum()
    loss.backward()
    return out, states, x.grad, tuple(h.grad for h in hx)


def _max_gap(a, b) -> float:
    return max(float((p - q).detach().abs().max()) if p.numel() else 0.0 for p, q in zip(a, b))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("index", range(12))
def test_converted_module_computes_what_the_original_does(mode, index):
    cfg = _configs(mode, 12, seed=7 if mode == "lstm" else 8)[index]
    ref, conv = _pair(mode, cfg, seed=index)
    D = 2 if cfg["bidirectional"] else 1
    L, B, T = cfg["num_layers"], cfg["batch"], cfg["seq"]
    h_out = cfg.get("proj_size") or cfg["hidden_size"]
    shape = (B, T, cfg["input_size"]) if cfg["batch_first"] else (T, B, cfg["input_size"])
    x = torch.randn(shape, dtype=torch.float64)
    hx = (torch.randn(L * D, B, h_out, dtype=torch.float64),)
    if mode == "lstm":
        hx += (torch.randn(L * D, B, cfg["hidden_size"], dtype=torch.float64),)
    for training in (False, True):  # train mode: dropout between layers, same masks
        ref.train(training)
        conv.train(training)
        ref.zero_grad()
        conv.zero_grad()
        out_r, st_r, gx_r, gh_r = _run(ref, x, hx, seed=100 + index)
        out_c, st_c, gx_c, gh_c = _run(conv, x, hx, seed=100 + index)
        assert out_c.shape == out_r.shape
        assert _max_gap([out_c, *st_c], [out_r, *st_r]) <= TOL
        assert _max_gap([gx_c, *gh_c], [gx_r, *gh_r]) <= TOL
        grads = _torch_grads(conv)
        assert sorted(grads) == sorted(n for n, _ in ref.named_parameters())
        assert _max_gap([grads[n] for n, _ in ref.named_parameters()],
                        [p.grad for _, p in ref.named_parameters()]) <= TOL  # fmt: skip


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_unbatched_input_and_default_states_match(mode):
    cfg = {"input_size": 3, "hidden_size": 5, "num_layers": 2, "bidirectional": True}
    ref, conv = _pair(mode, cfg, seed=1)
    x = torch.randn(4, 3, dtype=torch.float64)
    (out_r, st_r), (out_c, st_c) = ref(x), conv(x)
    st_r = st_r if isinstance(st_r, tuple) else (st_r,)
    st_c = st_c if isinstance(st_c, tuple) else (st_c,)
    assert out_c.shape == out_r.shape == (4, 10)
    assert _max_gap([out_c, *st_c], [out_r, *st_r]) <= TOL


class Seq2Seq(nn.Module):
    """Recurrent modules at several depths, one of them reached under two names."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.LSTM(6, 8, 2, bidirectional=True))
        self.decoders = nn.ModuleList([nn.GRU(16, 8, batch_first=True), nn.LSTM(8, 6, proj_size=3)])
        self.shared = self.decoders[1]
        self.head = nn.Linear(3, 5)


def test_convert_swaps_every_recurrent_module_and_unconvert_restores_the_state_dict():
    torch.manual_seed(0)
    model = Seq2Seq()
    conv = convert(model)
    assert isinstance(model.encoder[1], nn.LSTM)  # a copy unless inplace
    assert isinstance(conv.encoder[1], LSTM) and isinstance(conv.decoders[0], GRU)
    assert conv.shared is conv.decoders[1] and isinstance(conv.shared, LSTM)
    back = unconvert(conv)
    want, got = model.state_dict(), back.state_dict()
    assert list(got) == list(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    fresh = Seq2Seq()
    fresh.load_state_dict(got)  # loads into the original architecture
    assert convert(model, inplace=True) is model and isinstance(model.encoder[1], LSTM)


def test_a_bare_module_converts_to_its_replacement():
    lstm = nn.LSTM(3, 4)
    assert isinstance(convert(lstm), LSTM)
    assert isinstance(unconvert(convert(lstm)), nn.LSTM)


class CustomLSTM(nn.LSTM):
    def forward(self, x, hx=None):
        return super().forward(x * 2, hx)


def _parametrized_lstm() -> nn.LSTM:
    m = nn.LSTM(3, 4)
    parametrize.register_parametrization(m, "weight_hh_l0", nn.Identity())
    return m


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: nn.RNN(3, 4), "nn.RNN has no maskable equivalent"),
        (lambda: nn.LSTMCell(3, 4), "a cell stepped by your own loop"),
        (lambda: nn.GRUCell(3, 4), "a cell stepped by your own loop"),
        (lambda: CustomLSTM(3, 4), "a subclass of LSTM"),
        (_parametrized_lstm, "parametrizations"),
    ],
)
def test_what_cannot_be_converted_is_named_in_one_line(make, fragment):
    model = nn.Sequential(nn.LSTM(3, 3), nn.Sequential(make()))
    with pytest.raises(ValueError) as err:
        convert(model, inplace=True)
    msg = str(err.value)
    assert "\n" not in msg and fragment in msg and "module '1.0'" in msg
    assert "torch.nn.LSTM" in msg and "torch.nn.GRU" in msg  # what it takes
    assert isinstance(model[0], nn.LSTM)  # nothing changed


def test_packed_sequence_input_is_refused_with_the_fix():
    conv = convert(nn.LSTM(3, 4))
    packed = nn.utils.rnn.pack_sequence([torch.randn(3, 3), torch.randn(2, 3)])
    with pytest.raises(ValueError, match="pad_packed_sequence"):
        conv(packed)


def test_plain_recurrent_modules_are_refused_as_targets_with_the_way_out():
    with pytest.raises(ValueError, match=r"lstmpack.convert\(model\)"):
        find_targets(nn.Sequential(nn.GRU(3, 4)))


def test_targets_of_a_converted_model():
    model = convert(Seq2Seq())
    got = {t.name: t for t in find_targets(model)}
    assert list(got) == ["encoder.1.l0", "encoder.1.l0_reverse", "encoder.1.l1",
                         "encoder.1.l1_reverse", "decoders.0.l0", "decoders.1.l0",
                         "decoders.1.l0.proj"]  # fmt: skip
    enc1 = got["encoder.1.l1"]
    assert (enc1.kind, enc1.rows, enc1.cols, enc1.col_splits) == ("lstm", 32, 24, (0, 16, 24))
    gru = got["decoders.0.l0"]
    assert (gru.kind, gru.rows, gru.cols, gru.col_splits) == ("gru", 24, 24, (0, 16, 24))
    assert gru.row_blocks == (0, 8, 16, 24)
    lstm_p, proj = got["decoders.1.l0"], got["decoders.1.l0.proj"]
    # the recurrent columns read the projected state: proj_size of them
    assert (lstm_p.rows, lstm_p.cols, lstm_p.col_splits) == (24, 11, (0, 8, 11))
    assert (proj.kind, proj.rows, proj.cols) == ("proj", 3, 6)


def test_step_loops_compute_what_the_fused_kernels_do():
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    lstm = convert(nn.LSTM(3, 6, 2, proj_size=4).double())
    fused = lstm(x)[0]
    seen = []
    for layer in lstm.layers():  # a hook on the projection makes the layer step in Python
        layer.proj.register_forward_hook(lambda m, a, o: seen.append(a[0].shape))
    assert float((lstm(x)[0] - fused).abs().max()) <= TOL
    assert seen and len(seen) == 2 * 5 and seen[0] == (2, 6)  # every step, every layer
    gru = convert(nn.GRU(3, 6, 2).double())
    fused = gru(x)[0]
    for layer in gru.layers():  # what the quantize pass sets; identity: nothing quantized
        layer.recurrent_act = nn.Identity()
    assert float((gru(x)[0] - fused).abs().max()) <= TOL


def test_calibration_inputs_of_gru_and_projection_targets():
    torch.manual_seed(0)
    model = convert(nn.Sequential(nn.GRU(3, 4), nn.LSTM(4, 5, proj_size=2)))
    targets = {t.name: t for t in find_targets(model)}
    x = torch.randn(6, 2, 3)
    recorded = {}

    def record(name):
        def hook(module, args, output):
            recorded.setdefault(name, []).append((args, output))

        return hook

    model[0].l0.register_forward_hook(record("gru"))
    model[1].l0.proj.register_forward_hook(record("proj"))

    def forward(_):
        model[1](model[0](x)[0])

    grams = collect_grams(model, list(targets.values()), lambda: (forward, [0]))
    (args, out), = recorded["gru"]  # fmt: skip
    xs, hs = args[0], out[0]
    prev = torch.cat([torch.zeros_like(hs[:1]), hs[:-1]])  # h_{t-1}, zero at t = 0
    X = torch.cat([xs, prev], dim=-1).reshape(-1, 7).double()
    torch.testing.assert_close(grams["0.l0"].H, X.T @ X)
    P = torch.cat([a[0] for a, _ in recorded["proj"]]).double()  # o * tanh(c), every step
    assert P.shape == (6 * 2, 5)
    torch.testing.assert_close(grams["1.l0.proj"].H, P.T @ P)


def test_masked_converted_model_unconverts_to_its_effective_weights():
    torch.manual_seed(0)
    model = convert(nn.Sequential(nn.GRU(3, 8, 2, bidirectional=True), nn.LSTM(16, 6, proj_size=4)))
    pipe = Pipeline([_combine(3)], Schedule(kind="one-shot"))
    pipe.prepare(model)
    pipe.apply_event(1)

    def forward(m):
        return m[1](m[0](x)[0])[0]

    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        masked = forward(model)
        plain = unconvert(model)
        assert isinstance(plain[0], nn.GRU) and isinstance(plain[1], nn.LSTM)
        torch.testing.assert_close(forward(plain), masked, rtol=0, atol=1e-6)
    assert int((plain[0].weight_hh_l1_reverse == 0).sum()) > 0  # the masks travelled


def _combine(alpha: int):
    from compress.config import CombineConfig
    from compress.passes.combine import CombinePass

    return CombinePass(CombineConfig(max_paths=alpha))


def test_gru_and_projected_layers_pack_as_their_own_kinds():
    torch.manual_seed(0)
    model = convert(nn.Sequential(nn.LSTM(3, 8), nn.GRU(8, 8), nn.LSTM(8, 6, proj_size=4)))
    pipe = Pipeline([_combine(3)], Schedule(kind="one-shot"))
    pipe.prepare(model)
    pipe.apply_event(1)
    packed = pipe.finalize(workload={"seq_len": 7, "batch": 1})
    kinds = {layer.name: (layer.kind, layer.proj_size) for layer in packed.layers}
    assert kinds == {"0.l0": ("lstm", None), "1.l0": ("gru", None),
                     "2.l0": ("lstm", 4), "2.l0.proj": ("proj", None)}  # fmt: skip
    for t, layer in zip(pipe.targets, packed.layers):  # the packed matrix is the masked one
        torch.testing.assert_close(torch.from_numpy(unpack_dense(layer)), masked_weight(t))
    gemms = {g.name: g for g in from_packed_json(packed.to_json())}
    # hwsim: the GRU's input part batched over the sequence, its 3H x H part once per step
    assert gemms["1.l0/input"].repeats == 1 and gemms["1.l0/input"].M == 7
    assert gemms["1.l0/recurrent"].repeats == 7 and gemms["1.l0/recurrent"].N == 24
    # the projected LSTM reads a 4-wide state; its projection runs in every step
    assert gemms["2.l0/recurrent"].k_dense == 4 and gemms["2.l0.proj"].repeats == 7
    assert gemms["0.l0/recurrent"].repeats == 7 and "0.l0/input" in gemms
