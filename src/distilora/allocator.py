"""Keep freed memory in the process for the next training step, instead of giving it back to the kernel.

glibc serves each allocation above 32 MiB with its own mmap and unmaps it on free. Attention on long inputs makes
such buffers on every layer of every step (16 texts x 12 heads x 512 x 512 scores), so each step faults them in
again page by page, zeroed by the kernel: the 512-token IMDB runs spent up to half their CPU time in the kernel.
Serving every allocation from the heap and never trimming it lets the next step reuse the same pages. The cost is
that memory freed late in a run is not returned before the process ends, which a training process does not need.
Where the C library is not glibc (macOS, musl) or another allocator is preloaded (jemalloc), this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)
NEVER_TRIM = 2**31 - 1                  # mallopt takes an int: 2 GiB of free heap top before any is returned


def keep_freed_memory() -> bool:
    """Ask glibc to serve large allocations from the heap and keep freed memory; True where glibc took it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
