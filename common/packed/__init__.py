"""The packed format ("lstmpack.packed/1"): the one contract between compress, hwsim and reports.

A packed model is two files side by side. `<stem>.json` holds the model's name, its workload
(seq_len, batch) and each layer's figures: sizes, column groups per split, nonzeros, bit widths,
spike rates; hwsim reads only this file. `<stem>.npz` holds the arrays under `<layer>/<array>`.

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
    KINDS,
    LayerFigures,
    PackingFigures,
    read_figures,
)

__all__ = [
    "FLOAT_BITS",
    "FORMAT",
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
