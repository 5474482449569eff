"""Column-combining kernels: pure functions of numpy data.

`column_combine` holds the Numba grouping kernels (`group_columns`, `group_columns_split`; the
weighted variant takes a cost per weight), `bitsets` their occupancy bitsets and bit primitives;
`reference` the published greedy algorithm in plain Python + numpy, the twin they are tested
against. Neither is imported here, so importing the package does not load Numba.
"""
