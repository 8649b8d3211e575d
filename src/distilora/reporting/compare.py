"""Compare finished runs side by side: method, size, speed and metrics on a common split, as a table and a chart."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from distilora.runfolder import RunFolder, atomic_write_file, atomic_write_text, write_csv_atomic

METRICS = ("accuracy", "subset_accuracy", "f1", "macro_f1", "micro_f1", "roc_auc", "pr_auc")
COLUMNS = ("run", "method", "backbone", "student_layers", "trainable_params", "total_params", "train_seconds",
           "train_samples_per_second", "peak_rss_mb", "split", "n", *METRICS)


def compare_runs(run_dirs: list[str | Path], split: str = "test") -> list[dict[str, Any]]:
    """One row per run; the split's metrics (validation when the run has no such split)."""
    rows = []
    for run_dir in run_dirs:
        folder = RunFolder(run_dir)
        info = folder.info()
        used = split if folder.metrics(split) else "validation"
        metrics = folder.metrics(used) or {}
        rows.append({"run": folder.path.name, "method": info.method, "backbone": Path(info.backbone).name,
                     "student_layers": "" if info.student_layers is None else len(info.student_layers),
                     "trainable_params": info.trainable_params, "total_params": info.total_params,
                     "train_seconds": info.train_seconds, "train_samples_per_second": info.train_samples_per_second,
                     "peak_rss_mb": info.peak_rss_mb, "split": used, "n": metrics.get("n"), **{m: metrics.get(m) for m in METRICS}})
    return rows


def split_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """What a reader of the table must know: runs measured on different splits, or on the split that chose them."""
    warnings = []
    splits = {row["split"] for row in rows}
    if len(splits) > 1:
        by_split = "; ".join(f"{s}: {', '.join(r['run'] for r in rows if r['split'] == s)}" for s in sorted(splits))
        warnings.append(f"these runs are measured on different splits ({by_split}), so their metrics do not compare; "
                        f"evaluate them on one file with `distilora eval RUN --data FILE` and compare --split eval-<stem>")
    if "validation" in splits:
        warnings.append("validation figures are optimistic: that split chose each run's checkpoint, threshold and "
                        "temperature")
    return warnings


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, int):
            return f"{value:,}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_comparison(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    """comparison.csv, comparison.md and comparison.png (grouped bars of the metrics every run has)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out_dir / "comparison.csv", rows, list(COLUMNS))
    notes = "".join(f"\n> warning: {w}\n" for w in split_warnings(rows))
    atomic_write_text(out_dir / "comparison.md", markdown_table(rows, COLUMNS) + "\n" + notes)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [m for m in METRICS if all(isinstance(r.get(m), float) for r in rows)]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(shown) * len(rows) / 2 + 3), 4))
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        ax.bar(np.arange(len(shown)) + i * width, [row[m] for m in shown], width, label=row["run"])
    ax.set_xticks(np.arange(len(shown)) + width * (len(rows) - 1) / 2, shown)
    ax.set_ylim(0, 1.05)
    ax.set_title("Runs compared")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out_dir / "comparison.png", dpi=110)
    plt.close(fig)
    return {"csv": out_dir / "comparison.csv", "md": out_dir / "comparison.md", "png": out_dir / "comparison.png"}


ENGINE_COLUMNS = ("run", "engine", "student_layers", "total_params", "train_seconds", "split", "n", *METRICS,
                  "samples_per_s_batch32", "ms_one_text_p50")


def write_engine_comparison(rows: list[dict[str, Any]], md_path: Path, png_path: Path) -> None:
    """A table of every model x engine, and a plot of the main metric against samples/s (up and right is better)."""
    atomic_write_text(md_path, markdown_table(rows, ENGINE_COLUMNS) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = next((m for m in ("accuracy", "macro_f1", "micro_f1") if all(isinstance(r.get(m), float) for r in rows)),
                  None)
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in rows:
        if metric is None:
            break
        ax.scatter(row["samples_per_s_batch32"], row[metric], s=60)
        ax.annotate(f"{row['run']} / {row['engine']}", (row["samples_per_s_batch32"], row[metric]),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("samples/s at batch 32 (log scale, this machine)")
    ax.set_ylabel(f"{metric} on {rows[0]['split'] if rows else ''}")
    ax.set_title("Accuracy against speed: teacher, students and engines")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write_file(png_path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
