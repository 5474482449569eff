"""common.runtime: the process-wide CPU settings of the training CLIs.

Each check runs in a child process: the settings are process-wide and would otherwise leak into
the rest of the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.runtime import _glibc

REPO = Path(__file__).resolve().parents[2]

# A 2-layer LSTM's forward and backward, repeated: the training steps' pattern of allocating and
# freeing the same tens of MB. Reports the minor page faults of the steps after two warm-up ones.
_STEPS = """
import json, resource, sys
import torch
from common.runtime import retain_freed_memory
retained = retain_freed_memory() if sys.argv[1] == "retain" else None
torch.set_num_threads(1)
torch.manual_seed(0)
lstm = torch.nn.LSTM(128, 256, num_layers=2)
x = torch.randn(100, 64, 128)
for k in range(5):
    if k == 2:
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out, _ = lstm(x)
    out.sum().backward()
print(json.dumps({"retained": retained,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}))
"""


def _child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc() is None, reason="the malloc settings are glibc's")
def test_retain_freed_memory_stops_training_steps_faulting_freed_memory_back_in():
    default = _child(_STEPS, "default")
    retained = _child(_STEPS, "retain")
    assert retained["retained"] is True
    # Measured: ~60k faults in 3 default steps (fresh mappings for the big activations), none
    # once freed memory is kept; the bounds leave room for other allocators' noise.
    assert default["faults"] > 5_000
    assert retained["faults"] < default["faults"] / 10


_DENORMAL = """
import json, sys, torch
from common.runtime import configure_cpu
if sys.argv[1] == "configure":
    configure_cpu(1)
tiny = torch.tensor([1e-20], dtype=torch.float32)
# 1e-40 is a float32 denormal (the smallest normal is 1.2e-38): kept, it scales back to 1e-30
print(json.dumps({"threads": torch.get_num_threads(), "value": float(tiny * tiny * 1e10)}))
"""


def test_configure_cpu_sets_threads_and_flushes_denormals():
    plain = _child(_DENORMAL, "plain")
    configured = _child(_DENORMAL, "configure")
    assert plain["value"] == pytest.approx(1e-30, rel=1e-3)
    assert configured["value"] == 0.0
    assert configured["threads"] == 1
