"""Closed-form systolic-array timing and SRAM access counts, matching SCALE-Sim (v2/v3).

A GEMM multiplies an ifmap of M x K by a filter of K x N. SCALE-Sim maps it onto an R x C array as
an S_R x S_C block of stationary (or output) positions and streams T values through each fold:

    os: S_R = M, S_C = N, T = K    fold = R + C + T - 2 cycles
    ws: S_R = K, S_C = N, T = M    fold = 2R + C + T - 2 (R extra cycles to load the weights)
    is: S_R = K, S_C = M, T = N    fold = 2R + C + T - 2

Folds run back to back with no overlap, and the whole run is one cycle shorter than the sum of the
folds (SCALE-Sim counts the last demand row as the end). Its demand matrices pad partial folds
with null requests, so a partial fold costs as much time as a full one; we do the same.

Checked against SCALE-Sim 3.0.0 itself: the ten golden totals in tests/hwsim/test_dataflow.py and 263 random GEMMs on
square and non-square arrays give identical cycles, and identical SRAM counts except the os ofmap
quirk noted in ``sram_accesses`` (see BENCHMARKS.md, hwsim section).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.config import check_dataflow


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Mapping:
    """How one GEMM sits on the array: the mapped dimensions, the folds and the fold length."""

    s_rows: int
    s_cols: int
    stream: int
    row_folds: int
    col_folds: int
    fold_cycles: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def cycles(self) -> int:
        return self.folds * self.fold_cycles - 1


def mapping(
    M: int, K: int, N: int, rows: int, cols: int, dataflow: str, stream_scale: int = 1
) -> Mapping:
    """Map a GEMM; ``stream_scale`` multiplies the streamed length T (bit-serial MACs)."""
    _check_sizes(M=M, K=K, N=N, rows=rows, cols=cols, stream_scale=stream_scale)
    check_dataflow(dataflow)
    if dataflow == "os":
        s_rows, s_cols, stream = M, N, K
        fill = rows + cols - 2
    elif dataflow == "ws":
        s_rows, s_cols, stream = K, N, M
        fill = 2 * rows + cols - 2
    else:
        s_rows, s_cols, stream = K, M, N
        fill = 2 * rows + cols - 2
    stream *= stream_scale
    return Mapping(
        s_rows=s_rows,
        s_cols=s_cols,
        stream=stream,
        row_folds=_ceil_div(s_rows, rows),
        col_folds=_ceil_div(s_cols, cols),
        fold_cycles=fill + stream,
    )


def gemm_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> int:
    """Total compute cycles of an (M x K) @ (K x N) GEMM on a rows x cols array, as SCALE-Sim.

    Note the argument order is M, K, N; SCALE-Sim's topology rows are written M, N, K.
    """
    return mapping(M, K, N, rows, cols, dataflow).cycles


@dataclass(frozen=True)
class SramAccesses:
    """Element counts of SRAM traffic for one GEMM, as SCALE-Sim's compute report counts them."""

    ifmap_reads: int
    filter_reads: int
    ofmap_writes: int


def sram_accesses(
    M: int, K: int, N: int, rows: int, cols: int, dataflow: str, ifmap_k: int | None = None
) -> SramAccesses:
    """Operand elements read and written per GEMM.

    ws: ifmap M*K*ceil(N/C), filter K*N, ofmap M*N*ceil(K/R) (each K fold writes its partial sums).
    os: ifmap M*K*ceil(N/C), filter K*N*ceil(M/R), ofmap M*N.
    is: ifmap M*K, filter K*N*ceil(M/C), ofmap M*N*ceil(K/R).
    SCALE-Sim v2's os mode also adds R + C to the ofmap count per fold, a bookkeeping quirk we leave
    out. ``ifmap_k`` is the number of input elements per ifmap row actually read when it differs
    from K: a column-combined array row reads every input of its group through the multiplexers.
    """
    _check_sizes(M=M, K=K, N=N, rows=rows, cols=cols)
    check_dataflow(dataflow)
    kin = K if ifmap_k is None else ifmap_k
    _check_sizes(ifmap_k=kin)
    if dataflow == "ws":
        return SramAccesses(M * kin * _ceil_div(N, cols), K * N, M * N * _ceil_div(K, rows))
    if dataflow == "os":
        return SramAccesses(M * kin * _ceil_div(N, cols), K * N * _ceil_div(M, rows), M * N)
    return SramAccesses(M * kin, K * N * _ceil_div(M, cols), M * N * _ceil_div(K, rows))
