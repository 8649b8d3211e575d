"""Shared helpers for benchmarks: where the real data lives, machine facts, and writing results."""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(os.environ.get("DISTILORA_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
RESULTS = Path(__file__).resolve().parent / "results"


def require_data(*parts: str) -> Path:
    """The path of a shared data file, or exit cleanly (status 0) with a message saying what is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        print(f"skipped: {path} not found (benchmarks read ../shared/data; set DISTILORA_DATA to its folder)")
        sys.exit(0)
    return path


def require_finished_run(run: Path) -> None:
    """Exit with a one-line message unless ``run`` is a finished distilora run folder with test metrics."""
    for needed in ("config.yaml", "run.json", "metrics/test.json"):
        if not (run / needed).exists():
            sys.exit(f"{run}: {needed} not found; give a finished distilora run folder")


def machine() -> dict[str, Any]:
    import torch

    cpu, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}


def matmul_peak_gflops(size: int = 1024, repeats: int = 20, dtype: str = "float32") -> float:
    """Measured matmul throughput of this machine in one dtype: the ceiling that achieved FLOP/s is compared with."""
    import torch

    a, b = torch.randn(size, size, dtype=getattr(torch, dtype)), torch.randn(size, size, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)


def trainer_clock() -> Any:
    """A Trainer callback that sums training-step seconds only (the Trainer's runtime includes start-up and
    evaluation), and keeps (step, seconds, accuracy) at each evaluation for time-to-accuracy curves."""
    from transformers import TrainerCallback

    class TrainingClock(TrainerCallback):
        def __init__(self) -> None:
            self.train_seconds, self.start, self.points = 0.0, 0.0, []

        def on_step_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            self.train_seconds += time.perf_counter() - self.start

        def on_evaluate(self, args, state, control, metrics=None, **k):
            self.points.append({"step": state.global_step, "seconds": self.train_seconds,
                                "accuracy": metrics["eval_accuracy"]})

    return TrainingClock()


def step_bench_arguments(description: str, sides: tuple[str, ...], *, length: int, name: str) -> argparse.Namespace:
    """Arguments of a bench that times training steps of a fixed shape, each side in a child process of its own
    (which gets --side)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=length)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--side", choices=sides, help=argparse.SUPPRESS)  # the child process's job
    parser.add_argument("--name", default=name)
    return parser.parse_args()


def child_side(script: str, side: str, args: argparse.Namespace, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one side of a step bench in a process of its own (its peak memory is its own); its JSON row."""
    child = subprocess.run([sys.executable, script, "--side", side, "--batch", str(args.batch), "--length",
                            str(args.length), "--steps", str(args.steps)], capture_output=True, text=True, env=env)
    if child.returncode:
        sys.exit(f"{side} failed: {child.stderr.strip().splitlines()[-1]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def mpnet_lora_step_setup(batch: int, length: int, num_labels: int, *, fused: bool = True,
                          recompute: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    """The mpnet teacher as `distilora ship` trains it (LoRA r=16 on the default targets, fused attention unless
    told not), its AdamW and one random batch of the given shape: what the step benches time."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from distilora.modeling.backbone import quiet_transformers, resolve_backbone
    from distilora.modeling.build import lora_target_modules
    from distilora.modeling.fast_attention import use_fused_attention
    from distilora.modeling.recompute import recompute_layer_activations

    torch.manual_seed(0)
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(resolve_backbone("mpnet"), num_labels=num_labels)
    if fused:
        use_fused_attention(model)
    if recompute:
        recompute_layer_activations(model)
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32, modules_to_save=["classifier"],
                      target_modules=lora_target_modules(model, "auto"))
    model = get_peft_model(model, lora).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    ids = torch.randint(1000, 30000, (batch, length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "labels": torch.randint(0, num_labels, (batch,))}
    return model, optimizer, inputs


def write_side_comparison(args: argparse.Namespace, rows: list[dict[str, Any]], key: str,
                          gains: dict[str, str]) -> None:
    """Compare every side of a step bench with the first (its speed-up, and each ``gains`` column: the first
    side's value minus this side's) and write the results file with the command that reproduces it."""
    base = rows[0]
    summary = {key: [{"side": row["side"], "speedup": round(base["s_per_step"] / row["s_per_step"], 2),
                      **{out: round(base[column] - row[column], 1) for out, column in gains.items()}}
                     for row in rows[1:]]}
    print(summary)
    command = f"python bench/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:])
    print(f"wrote {write_results(args.name, {'command': command, 'rows': rows, **summary})}")
