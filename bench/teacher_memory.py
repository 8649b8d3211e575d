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
from common import child_side, print_table, step_bench_arguments, write_results  # noqa: E402

SIDES = ("eager attention (transformers)", "fused attention (distilora)", "fused + gradient checkpointing")


def one_side(side: str, batch: int, length: int, steps: int) -> dict:
    """Train ``steps`` steps after one warm-up step in this process; returns seconds per step and peak memory."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from distilora.memory import peak_rss_mb, reset_peak_rss
    from distilora.modeling.backbone import quiet_transformers, resolve_backbone
    from distilora.modeling.build import lora_target_modules
    from distilora.modeling.fast_attention import use_fused_attention
    from distilora.modeling.recompute import recompute_layer_activations

    torch.manual_seed(0)
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(resolve_backbone("mpnet"), num_labels=5)
    if side != SIDES[0]:
        use_fused_attention(model)
    if side == SIDES[2]:
        recompute_layer_activations(model)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32, modules_to_save=["classifier"],
                      target_modules=lora_target_modules(model, "auto"))
    model = get_peft_model(model, lora).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    ids = torch.randint(1000, 30000, (batch, length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 5, (batch,))}
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
    eager = rows[0]
    summary = {"against_eager": [{"side": row["side"], "speedup": round(eager["s_per_step"] / row["s_per_step"], 2),
                                  "memory_saved_mb": round(eager["peak_rss_mb"] - row["peak_rss_mb"], 1)}
                                 for row in rows[1:]]}
    print(summary)
    command = "python bench/teacher_memory.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_results(args.name, {'command': command, 'rows': rows, **summary})}")


if __name__ == "__main__":
    main()
