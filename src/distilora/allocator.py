"""Keep freed memory in the process for the next training step, instead of giving it back to the kernel.

glibc serves each allocation above 32 MiB with its own mmap and unmaps it on free. Attention on long inputs makes
such buffers on every layer of every step (16 texts x 12 heads x 512 x 512 scores), so each step faults them in
again page by page, zeroed by the kernel: the 512-token IMDB runs spent up to half their CPU time in the kernel.
Serving every allocation from the heap and not trimming it lets the next step reuse the same pages; blocks of many
sizes pile up, though (a whole IMDB teacher run grew to 22 GB where its steps need 8), so it is an option
(train.reuse_freed_memory), and a watcher hands the free part back to the kernel (malloc_trim) whenever the process
grows past 70% of the machine's memory. The setting is process-wide: it holds while the training or pipeline that
asked for it runs, after which glibc's defaults come back and the kept memory is released. Where the C library is
not glibc (macOS, musl), this does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator

from distilora.errors import DistiloraWarning
from distilora.memory import resident_bytes

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4      # glibc's mallopt parameter numbers (malloc.h)
NEVER_TRIM = 2**31 - 1                      # mallopt takes an int: 2 GiB of free heap top before any is returned
DEFAULT_TRIM, DEFAULT_MMAP_MAX = 128 * 1024, 65536  # glibc's own defaults
KEEP_SHARE = 0.7                            # of the machine's memory, above which kept memory is handed back
WATCH_SECONDS = 0.5
REGROW_SHARE = 0.05                          # of the limit: growth after a trim that earns the next one
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


def machine_memory_bytes() -> int:
    """Physical memory, or the container's limit where that is lower (cgroup v2)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


class _Watcher(threading.Thread):
    """Hands the heap's free pages back to the kernel whenever the process grows past ``limit`` bytes, so kept
    memory speeds steps up without ever taking the machine's last gigabytes.

    Where the memory in use is itself above the limit, a trim frees little and another would free nothing, so the
    next one waits until the process has grown a further ``REGROW_SHARE`` of the limit past what the last trim
    left, or has fallen back under the limit."""

    def __init__(self, libc: Any, limit: int) -> None:
        super().__init__(name="distilora-freed-memory", daemon=True)
        self.libc, self.limit, self.trims, self.stop = libc, limit, 0, threading.Event()

    def run(self) -> None:
        bound = self.limit
        while not self.stop.wait(WATCH_SECONDS):
            resident = resident_bytes()
            if resident <= self.limit:
                bound = self.limit
            elif resident > bound:
                self.libc.malloc_trim(0)
                self.trims += 1
                bound = max(self.limit, resident_bytes() + int(REGROW_SHARE * self.limit))


@contextlib.contextmanager
def freed_memory_kept(enabled: bool, limit_bytes: int | None = None) -> Iterator[None]:
    """Keep freed memory while the block runs (handing the free part back whenever the process grows past
    ``limit_bytes``, by default 70% of the machine's memory), then release it; inside a block that keeps it already
    (a ship stage's training), leave it to that block."""
    global _kept
    applied = enabled and not _kept and keep_freed_memory()
    _kept = _kept or applied
    watcher = None
    if applied:
        watcher = _Watcher(_glibc(), limit_bytes or int(KEEP_SHARE * machine_memory_bytes()))
        watcher.start()
    try:
        yield
    finally:
        if watcher is not None:
            watcher.stop.set()
            watcher.join()
            _kept = False
            release_freed_memory()
            if watcher.trims:
                warnings.warn(DistiloraWarning(
                    f"train.reuse_freed_memory: the process grew past {watcher.limit / 2**30:.1f} GiB and handed its "
                    f"free memory back {watcher.trims} time(s); steps ran nearer glibc's default speed then"))
