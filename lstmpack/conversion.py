"""`convert(model)`: every nn.LSTM / nn.GRU of a module tree swapped for its maskable equivalent
(lstmpack.rnn), holding the same weights; `unconvert(model)` swaps them back.

A converted model computes what the original did (outputs, final states and gradients; tested in
float64 on random shapes) and its recurrent layers are what the passes compress. `unconvert` gives
plain nn.LSTM / nn.GRU modules holding the effective weights (masks and weight quantization
applied), with the original state-dict keys, so the compressed model loads into the original
architecture again. Activation quantizers (hooks of the quantize pass) do not travel back.

Only what is known to be computed exactly is taken: exact nn.LSTM and nn.GRU instances whose
weights are plain parameters. Anything else recurrent (nn.RNN, the *Cell modules, a subclass with
its own forward or cell, a module already carrying parametrizations) is refused in one line
naming it; nothing is changed then.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from lstmpack.rnn import GRU, LSTM

SUPPORTED = (
    "torch.nn.LSTM (any num_layers, bidirectional, batch_first, dropout, bias, proj_size) and "
    "torch.nn.GRU (the same, without proj_size)"
)
_REFUSED = (nn.RNNBase, nn.RNNCellBase)  # recurrent modules we cannot prove equal


def _refusal(name: str, module: nn.Module) -> str | None:
    """Why `module` cannot be converted, or None when it can (or is not recurrent at all)."""
    kind = type(module)
    if parametrize.is_parametrized(module):
        return "it carries parametrizations (remove them, then convert)"
    if kind in (nn.LSTM, nn.GRU):
        plain = all(n in module._parameters for n in module._flat_weights_names)
        return None if plain else "its weights are not plain parameters (weight norm?)"
    if isinstance(module, nn.RNN):
        return "an Elman nn.RNN has no maskable equivalent"
    if isinstance(module, nn.RNNCellBase):
        return (
            "a cell stepped by your own loop is not supported; run nn.LSTM/nn.GRU over the sequence"
        )
    if isinstance(module, nn.RNNBase):
        return f"a subclass of {kind.__mro__[1].__name__} may change its cell or forward"
    return None


def check_convertible(model: nn.Module) -> None:
    """ValueError naming the first recurrent module `convert` cannot take, and what it takes."""
    for name, module in model.named_modules():
        if not isinstance(module, _REFUSED):
            continue
        why = _refusal(name, module)
        if why is not None:
            where = f"module {name!r}" if name else "the model"
            raise ValueError(
                f"cannot convert {where} ({type(module).__name__}): {why}; lstmpack.convert "
                f"takes {SUPPORTED}"
            )


@torch.no_grad()
def to_maskable(module: nn.LSTM | nn.GRU) -> LSTM | GRU:
    """The maskable equivalent of one nn.LSTM / nn.GRU, holding its weights, on its device and
    in its dtype, in its train/eval mode."""
    why = _refusal("", module)
    if why is not None or type(module) not in (nn.LSTM, nn.GRU):
        raise ValueError(f"cannot convert a {type(module).__name__}: {why}; takes {SUPPORTED}")
    args = dict(
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        dropout=float(module.dropout),
        bidirectional=module.bidirectional,
    )
    if isinstance(module, nn.LSTM):
        new = LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size, **args)
    else:
        new = GRU(module.input_size, module.hidden_size, **args)
    ref = module.weight_ih_l0
    new.to(device=ref.device, dtype=ref.dtype)
    for i, layer in enumerate(new.layers()):
        sfx = _suffix(new, i)
        w_ih, w_hh = getattr(module, f"weight_ih{sfx}"), getattr(module, f"weight_hh{sfx}")
        layer.weight.copy_(torch.cat([w_ih, w_hh], dim=1))
        layer.weight.requires_grad_(w_ih.requires_grad or w_hh.requires_grad)
        if module.bias:
            layer.bias_ih.copy_(getattr(module, f"bias_ih{sfx}"))
            layer.bias_hh.copy_(getattr(module, f"bias_hh{sfx}"))
        if getattr(module, "proj_size", 0):
            layer.proj.weight.copy_(getattr(module, f"weight_hr{sfx}"))
    return new.train(module.training)


@torch.no_grad()
def to_torch(module: LSTM | GRU) -> nn.LSTM | nn.GRU:
    """The plain nn.LSTM / nn.GRU of one converted module, holding its effective weights."""
    args = dict(
        num_layers=module.num_layers,
        bias=module.bias,
        batch_first=module.batch_first,
        dropout=module.dropout,
        bidirectional=module.bidirectional,
    )
    layers = module.layers()
    w0 = layers[0].weight  # the effective weight: every parametrization applied
    if isinstance(module, LSTM):
        new = nn.LSTM(module.input_size, module.hidden_size, proj_size=module.proj_size, **args)
    else:
        new = nn.GRU(module.input_size, module.hidden_size, **args)
    new.to(device=w0.device, dtype=w0.dtype)
    for i, layer in enumerate(layers):
        sfx = _suffix(module, i)
        w_ih, w_hh = layer.split_weight()
        getattr(new, f"weight_ih{sfx}").copy_(w_ih)
        getattr(new, f"weight_hh{sfx}").copy_(w_hh)
        if module.bias:
            getattr(new, f"bias_ih{sfx}").copy_(layer.bias_ih)
            getattr(new, f"bias_hh{sfx}").copy_(layer.bias_hh)
        if module.proj_size:
            getattr(new, f"weight_hr{sfx}").copy_(layer.proj.weight)
    return new.train(module.training)


def _suffix(module: nn.Module, i: int) -> str:
    """nn.LSTM's parameter suffix of layer module i (in `layers()` order): _l0, _l0_reverse..."""
    d = 2 if module.bidirectional else 1
    return f"_l{i // d}" + ("_reverse" if i % d else "")


def _swap(model: nn.Module, match: type | tuple[type, ...], make) -> nn.Module:
    """`model` with every submodule of exactly a `match` type replaced by make(submodule); a
    module reached under two names is replaced by one new module, so sharing survives."""
    made: dict[int, nn.Module] = {}

    def new_of(m: nn.Module) -> nn.Module:
        if id(m) not in made:
            made[id(m)] = make(m)
        return made[id(m)]

    if type(model) in match:
        return new_of(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in match:
                setattr(parent, name, new_of(child))
    return model


def convert(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """`model` with every nn.LSTM and nn.GRU replaced by lstmpack.rnn.LSTM / GRU holding the same
    weights (a copy unless `inplace`; a bare nn.LSTM gives its replacement).

    Outputs, final states and gradients are those of the original. ValueError naming the module
    when the tree holds a recurrent module that cannot be converted; nothing is changed then.
    Hooks registered on the replaced modules themselves are not carried over."""
    check_convertible(model)
    if not inplace:
        model = copy.deepcopy(model)
    return _swap(model, (nn.LSTM, nn.GRU), to_maskable)


def unconvert(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """`model` with every lstmpack.rnn.LSTM / GRU replaced by a plain nn.LSTM / nn.GRU holding its
    effective weights (masks and weight quantization applied), so its state dict has the original
    keys and loads into the unconverted architecture (a copy unless `inplace`)."""
    if not inplace:
        model = copy.deepcopy(model)
    return _swap(model, (LSTM, GRU), to_torch)
