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
