"""Model name -> "module:attr" of its ModelSpec, imported only when that model is asked for.

Each family subclasses `common.spec.ModelSpec` next to its own code (lm/spec.py, nmt/spec.py,
nmt/names/spec.py), so a run never imports a family it does not run. A model of one's own is
named the same way on the command line, `--model my_pkg.my_module:SPEC`: any importable module
and the attribute holding its ModelSpec instance (the protocol: docs/modelspec.md).
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # common.spec imports torch: the sweep's parent process reads this module
    from common.spec import ModelSpec

MODELS: dict[str, str] = {
    "ptbc": "lm.spec:PTBC",
    "ptbw": "lm.spec:PTBW",
    "enwik8": "lm.spec:ENWIK8",
    "names": "nmt.names.spec:NAMES",
    "nmt": "nmt.spec:NMT",
    "multi30k": "nmt.multi30k.spec:MULTI30K",
    "elmo": "elmo.spec:ELMO",
}

PRESETS = ("smoke", "cpu", "paper")

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
PROTOCOL = (
    "it must name an importable module and an attribute holding a common.spec.ModelSpec "
    "instance, as my_pkg.my_module:SPEC (the protocol: docs/modelspec.md)"
)


def model_folder(name: str) -> str:
    """The runs/ folder of `--model name`: a built-in's name, or a user's `pkg.mod:ATTR` with
    the colon (awkward in paths, and refused on Windows) as a dash."""
    return name.replace(":", "-")


def get_spec(name: str) -> ModelSpec:
    """The spec of model `name`, a registered name or "module:ATTR"; ValueError listing the known
    models, or naming what is wrong with the "module:ATTR", otherwise."""
    if ":" in name:
        return load_spec(name)
    try:
        target = MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(MODELS)}, or module:ATTR naming "
            f"a ModelSpec of your own (docs/modelspec.md)"
        ) from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def load_spec(target: str) -> ModelSpec:
    """The ModelSpec instance `target` ("module:ATTR") names, checked against the protocol's
    attributes; ValueError naming `target` and what the protocol needs otherwise."""
    module, _, attr = target.partition(":")
    if not _DOTTED.match(module) or not attr.isidentifier():
        raise ValueError(f"--model {target!r} is not module:ATTR; {PROTOCOL}")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(
            f"--model {target!r}: cannot import {module!r} ({e}); {PROTOCOL}"
        ) from None
    except Exception as e:  # the module itself failed: say how, in one line
        raise ValueError(
            f"--model {target!r}: importing {module!r} raised {type(e).__name__}: {e}"
        ) from None
    if not hasattr(mod, attr):
        raise ValueError(
            f"--model {target!r}: module {module!r} has no attribute {attr!r}; {PROTOCOL}"
        )
    spec = getattr(mod, attr)
    from common.spec import ModelSpec

    if not isinstance(spec, ModelSpec):
        what = f"the class {spec.__name__}" if isinstance(spec, type) else type(spec).__name__
        raise ValueError(f"--model {target!r} is {what}, not a ModelSpec instance; {PROTOCOL}")
    check_spec(spec, f"--model {target!r}")
    return spec


def check_spec(spec: ModelSpec, where: str) -> None:
    """ValueError when the spec's metric is not one run records know, or its direction is not
    that metric's."""
    from reports.records import METRICS  # the run-record contract's metrics and directions

    if spec.metric not in METRICS:
        raise ValueError(
            f"{where}: metric {spec.metric!r} must be one of {', '.join(METRICS)} (the run "
            f"records and reports know these)"
        )
    if bool(spec.higher_is_better) != METRICS[spec.metric]:
        raise ValueError(
            f"{where}: higher_is_better={spec.higher_is_better} but {spec.metric} is "
            f"{'higher' if METRICS[spec.metric] else 'lower'}-is-better"
        )


def check_preset(preset: str) -> str:
    """`preset` if it is one of PRESETS, else a ValueError naming them."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
    return preset
