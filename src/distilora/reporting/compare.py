"""Compare finished runs side by side: method, size, speed and metrics on a common split, as a table and a chart."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from distilora.evaluation.uncertainty import RESAMPLES, Resampled, difference, intervals, resample
from distilora.reporting.html_parts import markdown_table
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


def certainty_rows(run_dirs: list[str | Path], split: str = "test") -> list[dict[str, Any]]:
    """Per run and headline metric: the value on the split with its 95% bootstrap interval, and the difference to
    the first run with its paired interval and verdict, on the texts both were scored on (all of them, or the
    shared ones when one run was scored on a sample of the other's file)."""
    scored = [scored_split(Path(run), split) for run in run_dirs]
    base_name = Path(run_dirs[0]).name
    rows = []
    for index, (run, this) in enumerate(zip(run_dirs, scored)):
        if this is None:
            rows.append({"run": Path(run).name, "metric": "", "verdict": f"no labelled predictions/{split}.jsonl"})
            continue
        changes, why = ({}, "baseline") if index == 0 else _paired_change(scored[0], this, split, base_name)
        for metric, interval in intervals(this.resampled).items():
            row: dict[str, Any] = {"run": Path(run).name, "metric": metric, **interval, "resamples": RESAMPLES}
            change = changes.get(metric)
            if change is None:
                row["verdict"] = why
            else:
                row.update(difference=change["difference"], difference_low=change["low"],
                           difference_high=change["high"], verdict=f"{change['verdict']}{why}")
            rows.append(row)
    return rows


def paired_change(base_run: Path, run: Path, split: str) -> tuple[dict[str, dict[str, Any]], str]:
    """run minus base_run per headline metric on the split's texts both were scored on (difference, low, high,
    verdict), and a note for the verdict or the reason there is no difference."""
    this = scored_split(run, split)
    if this is None:
        return {}, f"no labelled predictions/{split}.jsonl"
    return _paired_change(scored_split(base_run, split), this, split, base_run.name)


def _paired_change(base: ScoredSplit | None, this: ScoredSplit, split: str,
                   base_name: str) -> tuple[dict[str, dict[str, Any]], str]:
    """this run minus the base run on the split's texts both were scored on, resampled alike; and a note to append
    to the verdict (or the reason there is no difference)."""
    if base is None or base.task != this.task:
        return {}, f"not paired: {base_name} has no {split} predictions of this task"
    if base.keys == this.keys and np.array_equal(base.labels, this.labels):
        return difference(base.resampled, this.resampled), ""
    position = {key: i for i, key in enumerate(base.keys)}
    shared = [(position[key], i) for i, key in enumerate(this.keys) if key in position]
    if not shared:
        return {}, f"not paired: no {split} text in common with {base_name}"
    a, b = np.array([s[0] for s in shared]), np.array([s[1] for s in shared])
    if not np.array_equal(base.labels[a], this.labels[b]):
        return {}, f"not paired: the same {split} texts carry other labels than in {base_name}"
    return difference(base.subset(a).resampled, this.subset(b).resampled), f" (paired on {len(shared):,} shared texts)"


CERTAINTY_COLUMNS = ("run", "metric", "value", "low", "high", "difference", "difference_low", "difference_high",
                     "verdict")


@dataclass(frozen=True)
class ScoredSplit:
    """A run on a split: its texts (as (row, text) keys), gold labels, probabilities and thresholds."""

    task: str
    keys: list[tuple[int, str]]
    labels: np.ndarray
    probs: np.ndarray
    thresholds: list[float] | None

    @cached_property
    def resampled(self) -> Resampled:
        """Its headline metrics on the split and on the bootstrap resamples, computed once."""
        return resample(self.task, self.labels, self.probs, self.thresholds)

    def subset(self, index: np.ndarray) -> ScoredSplit:
        """The same run on some of the split's texts."""
        return ScoredSplit(self.task, [self.keys[i] for i in index], self.labels[index], self.probs[index],
                           self.thresholds)


def scored_split(run: Path, split: str) -> ScoredSplit | None:
    """The run's saved logits on a split at the temperature, and with the thresholds, that the split was scored
    with; None without labelled predictions."""
    from distilora.evaluation.metrics import probabilities

    folder = RunFolder(run)
    info = folder.info()
    predictions = folder.predictions(split)
    if not predictions or any(r["label"] is None for r in predictions):
        return None
    metrics = folder.metrics(split) or {}
    logits = np.asarray([r["logits"] for r in predictions], dtype=np.float64)
    return ScoredSplit(info.task, [(r["row"], r["text"]) for r in predictions],
                       np.asarray([r["label"] for r in predictions], dtype=np.int64),
                       probabilities(info.task, logits, metrics.get("temperature", info.temperature)),
                       metrics.get("thresholds", info.thresholds))


def write_comparison(rows: list[dict[str, Any]], out_dir: Path,
                     certainty: list[dict[str, Any]] | None = None) -> dict[str, Path]:
    """comparison.csv, comparison.md (with the intervals, when given) and comparison.png (grouped bars of the
    metrics every run has)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out_dir / "comparison.csv", rows, list(COLUMNS))
    notes = "".join(f"\n> warning: {w}\n" for w in split_warnings(rows))
    sure = "" if not certainty else ("\n" + certainty_markdown(certainty) + "\n")
    atomic_write_text(out_dir / "comparison.md", markdown_table(rows, list(COLUMNS)) + "\n" + notes + sure)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def certainty_markdown(rows: list[dict[str, Any]]) -> str:
    """The intervals as a section a reader can act on: which gaps are larger than the split's noise."""
    first = rows[0]["run"] if rows else ""
    return "\n".join([
        "## How sure: 95% bootstrap intervals", "",
        f"low-high: the metric's interval over {rows[0].get('resamples', '')} resamples of the split's texts; "
        f"difference: the run minus {first} on the same resamples (paired); within noise: that interval holds 0. "
        "Training seeds add their own spread on top.", "",
        markdown_table(rows, list(CERTAINTY_COLUMNS))])


ENGINE_COLUMNS = ("run", "engine", "student_layers", "total_params", "train_seconds", "split", "n", *METRICS,
                  "samples_per_s_batch32", "ms_one_text_p50")


def write_engine_comparison(rows: list[dict[str, Any]], md_path: Path, png_path: Path,
                            certainty: list[dict[str, Any]] | None = None) -> None:
    """A table of every model x engine (with the intervals of each model's scores, when given), and a plot of the
    main metric against samples/s (up and right is better)."""
    sure = "" if not certainty else "\n" + certainty_markdown(certainty) + "\n"
    atomic_write_text(md_path, markdown_table(rows, list(ENGINE_COLUMNS)) + "\n" + sure)
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
