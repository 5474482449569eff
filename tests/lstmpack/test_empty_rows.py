"""Empty rows per gate block, as metrics.json records them and the matrix figure's caption says."""

from __future__ import annotations

import numpy as np

from compress.packing import pack_layer
from lstmpack.run.records import empty_rows, packed_summary
from reports.plots.matrix import empty_rows_note


def _lstm_layer(hidden=3, inputs=2):
    W = np.random.default_rng(0).normal(size=(4 * hidden, inputs + hidden))
    W[0] = 0  # one empty input-gate row
    W[hidden + 1 : hidden + 3] = 0  # two empty forget-gate rows
    cols = np.arange(inputs + hidden, dtype=np.int64)
    ptr = np.array([0, 1, 2, 4, 5], np.int64)  # groups never mix input and recurrent columns
    return pack_layer(
        W, ptr, cols, name="rnn", max_paths=2, gamma=1.0, kind="lstm",
        input_size=inputs, hidden_size=hidden,
    )  # fmt: skip


def test_empty_rows_are_counted_per_gate_for_an_lstm_and_whole_for_a_linear_layer():
    layer = _lstm_layer()
    assert empty_rows(layer) == [1, 2, 0, 0]
    assert packed_summary(type("P", (), {"layers": [layer]}))["layers"][0]["empty_rows"] == [
        1, 2, 0, 0,
    ]  # fmt: skip
    assert "i 1, f 2, g 0, o 0 (of 3 per gate)" in empty_rows_note(layer)
    W = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])  # row 2 has no weight
    linear = pack_layer(W, np.array([0, 1, 2]), np.array([0, 1]), name="fc", max_paths=1, gamma=0)
    assert empty_rows(linear) == [1]
    assert empty_rows_note(linear) == "Rows left with no weight: 1 of 3"
