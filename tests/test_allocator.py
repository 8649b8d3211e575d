"""train.reuse_freed_memory: large blocks come from glibc's heap (reused next step), not a fresh mmap each time, and
only while the training or pipeline that asked for it runs."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from distilora.allocator import freed_memory_kept
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p

def from_heap():
    address = libc.malloc(64 * 2**20)
    heap = [line.split()[0] for line in open("/proc/self/maps") if line.rstrip().endswith("[heap]")]
    low, high = (int(part, 16) for part in heap[0].split("-")) if heap else (0, 0)
    return low <= address < high

outer = sys.argv[1] == "keep"
with freed_memory_kept(outer):
    with freed_memory_kept(not outer):  # a ship stage's training: the outer setting holds, or its own
        inner = from_heap()
    during = from_heap()
print(inner, during, from_heap())
"""

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc only")


@pytest.mark.parametrize(("mode", "expected"), [("keep", "True True False"), ("default", "True False False")])
def test_a_64_mib_block_comes_from_the_heap_only_while_freed_memory_is_kept(mode: str, expected: str) -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    assert probe.stdout.split() == expected.split()
