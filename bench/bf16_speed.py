"""One training step (forward + backward, full fine-tuning) in fp32 and under bf16 autocast, on the real backbones.

bf16 is a speed option only where the CPU computes it natively (AVX512-BF16, AMX); elsewhere PyTorch emulates it.
This measures the step both ways on this machine, so a config's train.precision can be judged by its CPU, and
records what distilora's fallback decides (`native_bf16`).

    python bench/bf16_speed.py [--backbones minilm mpnet] [--batch 16] [--length 64] [--name bf16_speed]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_results  # noqa: E402


def step_seconds(model, batch: dict, bf16: bool, repeats: int) -> float:
    """Best of ``repeats`` steps after one warm-up step."""
    import torch

    best = float("inf")
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**batch).logits
        logits.float().sum().backward()
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "mpnet"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="bf16_speed")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification

    from distilora.cpu_bf16 import native_bf16
    from distilora.errors import DistiloraError
    from distilora.modeling.backbone import quiet_transformers, resolve_backbone

    rows = []
    for name in args.backbones:
        try:
            path = resolve_backbone(name)
        except DistiloraError as err:
            print(f"skipped {name}: {err}")
            continue
        torch.manual_seed(0)
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        ids = torch.randint(1000, 20000, (args.batch, args.length))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        fp32, bf16 = step_seconds(model, batch, False, args.repeats), step_seconds(model, batch, True, args.repeats)
        rows.append({"backbone": name, "batch": args.batch, "length": args.length, "fp32_s": round(fp32, 3),
                     "bf16_s": round(bf16, 3), "bf16_speedup": round(fp32 / bf16, 3)})
        print_table(rows[-1:], list(rows[-1]))
    facts = machine()
    print(f"{facts['cpu']} {facts['isa']}: native bf16 = {native_bf16()}")
    print(f"wrote {write_results(args.name, {'native_bf16': native_bf16(), 'rows': rows})}")


if __name__ == "__main__":
    main()
