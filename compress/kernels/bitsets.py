"""Row-occupancy bitsets of a boolean matrix's columns (uint64 words over rows) and the Numba
primitives the grouping kernels (`compress.kernels.column_combine`) count with."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


def _bit_count(name: str, emit):
    """A Numba intrinsic int64(unsigned integer) computed by the LLVM instruction `emit` makes."""

    def typer(typingctx, x):
        if not isinstance(x, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return context.cast(builder, emit(builder, args[0]), signature.args[0], types.int64)

        return types.int64(x), codegen

    typer.__name__ = typer.__qualname__ = name
    return intrinsic(typer)


# hardware popcount (LLVM ctpop)
popcount = _bit_count("popcount", lambda builder, v: builder.ctpop(v))
# trailing zero bits of a nonzero word (LLVM cttz; zero is undefined, so never passed)
trailing_zeros = _bit_count(
    "trailing_zeros", lambda builder, v: builder.cttz(v, ir.Constant(ir.IntType(1), 1))
)


@njit(cache=True, nogil=True)
def weighted_overlap(bits, top, a, b):
    """sum over rows occupied in both a and b of min(top[a, r], top[b, r])."""
    total = 0.0
    for w in range(bits.shape[1]):
        m = bits[a, w] & bits[b, w]
        while m != 0:
            r = (w << 6) + trailing_zeros(m)
            total += min(top[a, r], top[b, r])
            m &= m - np.uint64(1)
    return total


@njit(cache=True, nogil=True)
def bitsets_by_word(nonzero):
    """(words, cols) uint64 occupancy; row-major sweep so the inner loop is contiguous."""
    rows, cols = nonzero.shape
    n_words = (rows + 63) // 64
    out = np.zeros((n_words, cols), np.uint64)
    for r in range(rows):
        w = r >> 6
        shift = np.uint64(r & 63)
        for c in range(cols):
            out[w, c] |= np.uint64(nonzero[r, c]) << shift
    return out


def column_bitsets(nonzero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy bitsets (n_nonzero_cols, words) uint64 and the ids of the nonzero columns."""
    by_word = bitsets_by_word(np.ascontiguousarray(nonzero))
    col_ids = np.flatnonzero(by_word.any(axis=0)).astype(np.int64)
    # Bit r & 63 of word r >> 6 is row r: counts need no order, weighted_overlap reads rows.
    return np.ascontiguousarray(by_word[:, col_ids].T), col_ids
