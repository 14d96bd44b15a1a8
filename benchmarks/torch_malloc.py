"""PyTorch's CPU tensors come from plain malloc. glibc serves blocks of more
than 128 KiB with a fresh mmap and unmaps them at free (its threshold moves,
but trimming and the free pattern keep resetting it), so an op's output of a
few MiB is page-faulted in anew at every call: measured here, PyTorch's eval
forward of the pruned resnet20 took 75-290 ms per call this way and 19 ms with
the memory kept, and which regime a case ran in depended on the cases run
before it. Our engine keeps freed blocks in its caching allocator; to time
PyTorch at its best and the same in every case order, glibc is told to keep
freed memory too (what a user gets from LD_PRELOADing jemalloc or tcmalloc).
"""
import ctypes
import ctypes.util

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

KEEP = 1 << 30  # bytes: larger than any block the benchmarks free


def keep_freed_memory():
    """Serve large blocks from the heap and never return its top to the
    system. A no-op where the C library is not glibc (no mallopt)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    if not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP))
