"""Keep freed memory in the process for the next training step, instead of giving it back to the kernel.

glibc serves each allocation above 32 MiB with its own mmap and unmaps it on free. Attention on long inputs makes
such buffers on every layer of every step (16 texts x 12 heads x 512 x 512 scores), so each step faults them in
again page by page, zeroed by the kernel: the 512-token IMDB runs spent up to half their CPU time in the kernel.
Serving every allocation from the heap and not trimming it lets the next step reuse the same pages; blocks of many
sizes pile up, though, so it is an option (train.reuse_freed_memory). The setting is process-wide: it holds while the
training or pipeline that asked for it runs, after which glibc's defaults come back and the kept memory is released.
Where the C library is not glibc (macOS, musl), this does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Any, Iterator

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4      # glibc's mallopt parameter numbers (malloc.h)
NEVER_TRIM = 2**31 - 1                      # mallopt takes an int: 2 GiB of free heap top before any is returned
DEFAULT_TRIM, DEFAULT_MMAP_MAX = 128 * 1024, 65536  # glibc's own defaults
_kept = False  # whether an enclosing freed_memory_kept block holds the setting


def _glibc() -> Any | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Ask glibc to serve large allocations from the heap and keep freed memory; True where glibc took it."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def release_freed_memory() -> None:
    """glibc's defaults again, and the free memory the heap holds handed back to the kernel."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM)
        libc.malloc_trim(0)


@contextlib.contextmanager
def freed_memory_kept(enabled: bool) -> Iterator[None]:
    """Keep freed memory while the block runs, then release it; inside a block that keeps it already (a ship stage's
    training), leave it to that block."""
    global _kept
    applied = enabled and not _kept and keep_freed_memory()
    _kept = _kept or applied
    try:
        yield
    finally:
        if applied:
            _kept = False
            release_freed_memory()
