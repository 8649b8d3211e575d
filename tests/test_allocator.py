"""train.reuse_freed_memory: large blocks come from glibc's heap (reused next step), not a fresh mmap each time."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from distilora.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
address = libc.malloc(64 * 2**20)
heap = [line.split()[0] for line in open("/proc/self/maps") if line.rstrip().endswith("[heap]")]
low, high = (int(part, 16) for part in heap[0].split("-")) if heap else (0, 0)
print(kept, low <= address < high)
"""


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc", reason="glibc only")
@pytest.mark.parametrize(("mode", "expected"), [("keep", "True True"), ("default", "False False")])
def test_a_64_mib_block_comes_from_the_heap_only_when_freed_memory_is_kept(mode: str, expected: str) -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    assert probe.stdout.split() == expected.split()
