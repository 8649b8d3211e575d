"""Resident memory of this process, now and at its peak per stage: the numbers users plan machines by (and the
kept-memory watcher bounds by).

Linux keeps the process's high-water mark (VmHWM); writing 5 to /proc/self/clear_refs resets it, so a stage that
runs after another in the same process (the `ship` pipeline) reports its own peak, not the earlier stage's. Where
/proc is not there, the peak is unknown (None) rather than wrong.
"""
from __future__ import annotations

import os
from pathlib import Path

STATUS, CLEAR_REFS, STATM = Path("/proc/self/status"), Path("/proc/self/clear_refs"), Path("/proc/self/statm")


def reset_peak_rss() -> None:
    """Start a new high-water mark from the current resident size (no-op where the kernel does not allow it)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float | None:
    """The highest resident memory since the process started or reset_peak_rss(), in MiB."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def resident_bytes() -> int:
    """This process's resident memory now, in bytes (0 where /proc is not there)."""
    try:
        return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0
