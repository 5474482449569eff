"""The packed format ("lstmpack.packed/1"): the one contract between compress, hwsim and reports.

A packed model is two files side by side. `<stem>.json` holds the model's name, its workload
(seq_len, batch) and each layer's figures: kind, sizes, column groups per split, nonzeros, bit
widths, spike rates; hwsim reads only this file. `<stem>.npz` holds the arrays under
`<layer>/<array>`.

Kinds: "lstm" (4H gate rows i, f, g, o by input + state columns; the state is proj_size wide for
an LSTM with a projection), "gru" (3H gate rows r, z, n by input + H columns, its b_hh kept apart
as `recurrent_bias`), "proj" (an LSTM's projection W_hr, P rows by H columns, multiplied in every
step) and "linear" (anything else; `recurrent` when it is fed back its own step's output).

Combining keeps, in each (row, group) cell, one weight; `control[r, g]` records its column, or -1
when the row has no nonzero in the group. Dense equivalence:
W_masked[r, control[r, g]] = values[r, g] * scale[r] wherever control >= 0, all else 0.

- `schema`: the version string, the layer kinds, the JSON checks (`read_figures`);
- `arrays`: the checks that tie the figures to the arrays;
- `model`: `PackedLayer`, `PackedModel` and their files.

numpy only: hwsim and reports read packed files without torch.
"""

from common.packed.arrays import check_groups, split_counts, validate_layer
from common.packed.model import PackedLayer, PackedModel
from common.packed.schema import (
    FLOAT_BITS,
    FORMAT,
    GATES,
    KINDS,
    LayerFigures,
    PackingFigures,
    read_figures,
)

__all__ = [
    "FLOAT_BITS",
    "FORMAT",
    "GATES",
    "KINDS",
    "LayerFigures",
    "PackedLayer",
    "PackedModel",
    "PackingFigures",
    "check_groups",
    "read_figures",
    "split_counts",
    "validate_layer",
]
