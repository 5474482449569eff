"""Process-wide CPU settings that the training and compression entry points share.

`configure_cpu` is called once by each training CLI (lm.train, nmt.train, compress.run) and by
the benchmark that times training steps, before any tensor work. Library code never calls it:
both settings are process-wide, and a test importing the library should not inherit them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest value mallopt takes (a C int): blocks up to 2 GiB come from the reusable heap.
_KEEP = 2**31 - 1


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # mallopt exists elsewhere too (musl has a no-op one); these parameters are glibc's.
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc


def retain_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse instead of returning it to the kernel.

    A training step allocates and frees the same activations and oneDNN workspaces every step.
    By default glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh mappings
    and trims freed heap tops, so each ptbc step faults ~44k pages (~170 MB) back in, zeroed by
    the kernel: on the reference VM that was 15% of CPU time in the kernel and a 1.3x slower
    ptbc step, varying with the host (BENCHMARKS.md, allocator section). Memory use is then the
    peak of the run, which it reaches within a few steps anyway.

    Returns False, changing nothing, where the C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, _KEEP) == 1
    return libc.mallopt(_M_TRIM_THRESHOLD, _KEEP) == 1 and ok


def configure_cpu(threads: int | None = None) -> None:
    """The CPU settings every training entry point wants: flush denormal floats (early in
    training the activations of a deep recurrent stack are tiny, and denormals make CPU kernels
    ~2x slower), keep freed memory (`retain_freed_memory`), and use `threads` torch threads
    (None or 0: leave torch's choice)."""
    import torch

    torch.set_flush_denormal(True)
    retain_freed_memory()
    if threads:
        torch.set_num_threads(threads)
