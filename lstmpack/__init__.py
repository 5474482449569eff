"""LSTMPack: hardware-aware compression of recurrent models, as a library and as a run layer.

The library, for a model of your own (every name below is importable from `lstmpack`):

    convert / unconvert      nn.LSTM / nn.GRU <-> maskable equivalents with the same weights
    LSTM, GRU                those equivalents (lstmpack.rnn), drop-ins for nn.LSTM / nn.GRU
    Compressor               the passes in your own training loop: prepare, step, finalize
    PruneConfig, CombineConfig, QuantConfig, Schedule
                             the pass configs and the event schedule a Compressor takes
    pack                     a model packed as it is (alpha = 1): the dense baseline
    simulate, HwConfig       hwsim's cost of a packed model on a systolic array
    write_record, table, Record
                             run records `python -m reports` reads, and compress.run's table
    PackedModel              the packed format (numpy only)
    ModelSpec, Finetune      the protocol `compress.run --model my_pkg.my_module:SPEC` runs
                             (docs/modelspec.md)

The run layer underneath the commands:

    registry   model name (or module:ATTR) -> its ModelSpec (imported only when asked for)
    run/       one compressed run: configuration -> dense stage -> compressed stage -> records
    sweep/     a grid of runs, each one a subprocess of `python -m compress.run`

`python -m compress.run` and `python -m compress.sweep` stay the documented commands; they are
thin shims over `lstmpack.run.cli` and `lstmpack.sweep.cli`. Nothing below this package imports it.
The names above are imported on first use, so `import lstmpack` (and the CLIs, which import
`lstmpack.registry`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS = {
    "convert": "lstmpack.conversion",
    "unconvert": "lstmpack.conversion",
    "LSTM": "lstmpack.rnn",
    "GRU": "lstmpack.rnn",
    "Compressor": "lstmpack.compression",
    "pack": "lstmpack.compression",
    "simulate": "lstmpack.compression",
    "write_record": "lstmpack.compression",
    "table": "lstmpack.compression",
    "Record": "lstmpack.compression",
    "PruneConfig": "compress.config",
    "CombineConfig": "compress.config",
    "QuantConfig": "compress.config",
    "Schedule": "compress.schedule",
    "HwConfig": "hwsim.config",
    "PackedModel": "common.packed",
    "ModelSpec": "common.spec",
    "Finetune": "common.spec",
}

__all__ = [
    "CombineConfig",
    "Compressor",
    "Finetune",
    "GRU",
    "HwConfig",
    "LSTM",
    "ModelSpec",
    "PackedModel",
    "PruneConfig",
    "QuantConfig",
    "Record",
    "Schedule",
    "convert",
    "pack",
    "simulate",
    "table",
    "unconvert",
    "write_record",
]

if TYPE_CHECKING:
    from common.packed import PackedModel
    from common.spec import Finetune, ModelSpec
    from compress.config import CombineConfig, PruneConfig, QuantConfig
    from compress.schedule import Schedule
    from hwsim.config import HwConfig
    from lstmpack.compression import Compressor, Record, pack, simulate, table, write_record
    from lstmpack.conversion import convert, unconvert
    from lstmpack.rnn import GRU, LSTM


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lstmpack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
