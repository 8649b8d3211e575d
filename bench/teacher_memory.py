"""The mpnet teacher's training step three ways, side by side on this machine: transformers' eager attention,
distilora's fused attention (modeling/fast_attention.py, always on), and that plus recomputed layer activations
(train.gradient_checkpointing, modeling/recompute.py). Seconds per step and peak resident memory.

Each side runs in its own process (so its peak is its own): LoRA r=16 on attention and feed-forward, as the ship
configs train the teacher, fp32, AdamW, batches of random token ids at a fixed length (attention's cost depends on
the length, not the words).

    distilora backbones install mpnet      # once
    python bench/teacher_memory.py [--batch 16] [--length 256] [--steps 3]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (child_side, mpnet_lora_step_setup, print_table, step_bench_arguments,  # noqa: E402
                    write_side_comparison)

SIDES = ("eager attention (transformers)", "fused attention (distilora)", "fused + gradient checkpointing")


def one_side(side: str, batch: int, length: int, steps: int) -> dict:
    """Train ``steps`` steps after one warm-up step in this process; returns seconds per step and peak memory."""
    from distilora.memory import peak_rss_mb, reset_peak_rss

    model, optimizer, inputs = mpnet_lora_step_setup(batch, length, num_labels=5, fused=side != SIDES[0],
                                                     recompute=side == SIDES[2])
    reset_peak_rss()
    seconds = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds.append(time.perf_counter() - start)
    return {"side": side, "batch": batch, "length": length, "s_per_step": round(sum(seconds[1:]) / steps, 2),
            "tokens_per_s": round(batch * length * steps / sum(seconds[1:]), 1), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    args = step_bench_arguments(__doc__.splitlines()[0], SIDES, length=256, name="teacher_memory")
    if args.side:
        print(json.dumps(one_side(args.side, args.batch, args.length, args.steps)))
        return
    rows = []
    for side in SIDES:
        rows.append(child_side(__file__, side, args))
        print_table(rows[-1:], list(rows[-1]))
    write_side_comparison(args, rows, "against_eager", {"memory_saved_mb": "peak_rss_mb"})


if __name__ == "__main__":
    main()
