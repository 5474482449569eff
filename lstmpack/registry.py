"""Model name -> "module:attr" of its ModelSpec, imported only when that model is asked for.

Each family subclasses `common.spec.ModelSpec` next to its own code (lm/spec.py, nmt/spec.py,
nmt/names/spec.py), so a run never imports a family it does not run.
"""

from __future__ import annotations

import importlib

from common.spec import ModelSpec

MODELS: dict[str, str] = {
    "ptbc": "lm.spec:PTBC",
    "ptbw": "lm.spec:PTBW",
    "enwik8": "lm.spec:ENWIK8",
    "names": "nmt.names.spec:NAMES",
    "nmt": "nmt.spec:NMT",
}

PRESETS = ("smoke", "cpu", "paper")


def get_spec(name: str) -> ModelSpec:
    """The spec of model `name`; ValueError listing the known models otherwise."""
    try:
        target = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def check_preset(preset: str) -> str:
    """`preset` if it is one of PRESETS, else a ValueError naming them."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
    return preset
