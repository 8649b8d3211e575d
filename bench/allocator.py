"""The mpnet teacher's training step under three memory allocators, side by side on this machine: glibc as it comes,
glibc with distilora's setting (training keeps freed memory for reuse: distilora/allocator.py), and jemalloc
(`LD_PRELOAD`, Debian's libjemalloc2). Seconds per step, user and kernel CPU seconds, peak resident memory.

Long inputs make attention's buffers large (16 x 12 heads x 512 x 512 per layer); glibc hands each one back to the
kernel when it is freed and the next step faults it in again, page by page, zeroed. Each side runs in its own
process: LoRA r=16 on attention and feed-forward as the ship configs train the teacher, AdamW, bf16 autocast where
the CPU has it (else fp32), batches of random token ids at a fixed length.

    distilora backbones install mpnet      # once
    python bench/allocator.py [--batch 16] [--length 512] [--steps 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (child_side, mpnet_lora_step_setup, print_table, step_bench_arguments,  # noqa: E402
                    write_side_comparison)

JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
SIDES = ("glibc", "glibc, freed memory kept (distilora)", "jemalloc (LD_PRELOAD)")


def one_side(side: str, batch: int, length: int, steps: int) -> dict:
    """Train ``steps`` steps after one warm-up step in this process; returns time, CPU split and peak memory."""
    import torch

    from distilora.allocator import keep_freed_memory
    from distilora.cpu_bf16 import native_bf16
    from distilora.memory import peak_rss_mb, reset_peak_rss

    if side == SIDES[1]:
        keep_freed_memory()
    model, optimizer, inputs = mpnet_lora_step_setup(batch, length, num_labels=2)
    bf16 = native_bf16()
    seconds, usage = [], None
    for step in range(steps + 1):
        if step == 1:
            reset_peak_rss()
            usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    end = resource.getrusage(resource.RUSAGE_SELF)
    return {"side": side, "precision": "bf16" if bf16 else "fp32", "batch": batch, "length": length,
            "s_per_step": round(sum(seconds[1:]) / steps, 2),
            "tokens_per_s": round(batch * length * steps / sum(seconds[1:]), 1),
            "user_s": round(end.ru_utime - usage.ru_utime, 1), "kernel_s": round(end.ru_stime - usage.ru_stime, 1),
            "page_faults": end.ru_minflt - usage.ru_minflt, "peak_rss_mb": peak_rss_mb()}


def run_side(side: str, args: argparse.Namespace) -> dict | None:
    """One side in a child process, with its allocator; None where jemalloc is not installed."""
    env = dict(os.environ)
    if side == SIDES[2]:
        if not JEMALLOC.exists():
            print(f"skipped {side}: {JEMALLOC} is missing (apt-get install libjemalloc2)")
            return None
        env["LD_PRELOAD"] = str(JEMALLOC)
    return child_side(__file__, side, args, env)


def main() -> None:
    args = step_bench_arguments(__doc__.splitlines()[0], SIDES, length=512, name="allocator")
    if args.side:
        print(json.dumps(one_side(args.side, args.batch, args.length, args.steps)))
        return
    rows = []
    for side in SIDES:
        row = run_side(side, args)
        if row is not None:
            rows.append(row)
            print_table(rows[-1:], list(rows[-1]))
    write_side_comparison(args, rows, "against_glibc", {"kernel_s_saved": "kernel_s"})


if __name__ == "__main__":
    main()
