"""The spiking surname classifier (spikingjelly's Spiking LSTM text tutorial), batched.

Task: 20,074 surnames from 18 languages (the PyTorch char-RNN tutorial's data/names), letters
folded to ascii_letters + " .,;'-" (58 symbols, as spikingjelly's tutorial), one-hot input,
one LSTM layer (hidden 256) and a linear readout of the output at each name's last letter.
Three cell kinds: "gate" (spikingjelly's gate-spiking LSTM, the tutorial's model), "output"
(snnTorch's output-spiking SLSTM, the translator's cell) and "analog" (the plain LSTM of the
same size, for comparison). The tutorial reports 0.512 test accuracy on its own split.

The package, one job a module: `config` (NamesConfig, presets), `data` (folding, splits,
batches), `model` (the classifier), `training` (train with a callback after every optimizer
step, evaluate), `cli` (`run`: one whole resumable run into runs/names/<run-id>/ with
config.json and metrics.json; `main`: `python -m nmt.names`), `spec` (the classifier as a
compression run sees it). Their public names are gathered here, the package's library API.
"""

from __future__ import annotations

from nmt.names.cli import TUTORIAL_ACCURACY, main, run
from nmt.names.config import CELLS, PRESETS, SPLITS, NamesConfig, preset_config
from nmt.names.data import LETTERS, NamesData, load_names, majority_baseline, to_ascii
from nmt.names.model import NamesClassifier, build_model, count_params
from nmt.names.training import evaluate, train

__all__ = [
    "CELLS",
    "LETTERS",
    "PRESETS",
    "SPLITS",
    "TUTORIAL_ACCURACY",
    "NamesClassifier",
    "NamesConfig",
    "NamesData",
    "build_model",
    "count_params",
    "evaluate",
    "load_names",
    "main",
    "majority_baseline",
    "preset_config",
    "run",
    "to_ascii",
    "train",
]
