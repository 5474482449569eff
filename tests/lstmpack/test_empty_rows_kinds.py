"""Empty rows are counted per gate block of each recurrent kind (common.packed.GATES): a GRU's
r, z, n as an LSTM's i, f, g, o; a projection or linear layer is one block."""

from __future__ import annotations

import numpy as np

from compress.packing import pack_layer
from lstmpack.run.records import empty_rows, packed_summary
from reports.plots.matrix import empty_rows_note


def _gru_layer(hidden: int = 3, inputs: int = 2):
    W = np.random.default_rng(0).normal(size=(3 * hidden, inputs + hidden))
    W[1] = 0  # one empty reset-gate row
    W[2 * hidden :] = 0  # the whole new-gate block
    W[2 * hidden, 0] = 1.0  # ... but for one weight
    cols = np.arange(inputs + hidden, dtype=np.int64)
    ptr = np.array([0, 1, 2, 4, 5], np.int64)  # groups never mix input and recurrent columns
    return pack_layer(
        W, ptr, cols, name="gru", max_paths=2, gamma=1.0, kind="gru",
        input_size=inputs, hidden_size=hidden,
    )  # fmt: skip


def test_a_grus_empty_rows_are_reported_per_gate():
    layer = _gru_layer()
    assert empty_rows(layer) == [1, 0, 2]
    summary = packed_summary(type("P", (), {"layers": [layer]}))
    assert summary["layers"][0]["empty_rows"] == [1, 0, 2]
    assert empty_rows_note(layer) == "Gate rows left with no weight: r 1, z 0, n 2 (of 3 per gate)"


def test_a_projection_is_one_block():
    W = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # P = 2 rows by H = 3 columns
    proj = pack_layer(W, np.array([0, 1, 3]), np.arange(3), name="l0.proj", max_paths=2,
                      gamma=1.0, kind="proj")  # fmt: skip
    assert empty_rows(proj) == [1]
    assert empty_rows_note(proj) == "Rows left with no weight: 1 of 2"
