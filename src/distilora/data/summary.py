"""What the model was trained and judged on: class counts and text lengths per split (data_summary.json)."""
from __future__ import annotations

from typing import Any

import numpy as np

from distilora.data.dataset import DataSplits, TextSplit
from distilora.data.labels import LabelSpace

HISTOGRAM_BINS = 10


def summarize_splits(splits: DataSplits) -> dict[str, Any]:
    """A JSON-serialisable summary of every split; the report shows it and readers spot skew or truncation."""
    space = splits.label_space
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test,
             "unlabeled": splits.unlabeled}
    return {
        "task": space.task,
        "labels": list(space.names),
        "aux_names": splits.aux_names,
        "splits": {name: summarize_split(split, space) for name, split in parts.items() if split is not None},
    }


def summarize_split(split: TextSplit, space: LabelSpace) -> dict[str, Any]:
    texts = split.texts if split.pairs is None else [f"{a} {b}" for a, b in zip(split.texts, split.pairs)]
    chars = np.array([len(t) for t in texts], dtype=np.float64)
    words = np.array([len(t.split()) for t in texts], dtype=np.float64)
    counts, edges = np.histogram(words, bins=HISTOGRAM_BINS) if len(words) else (np.zeros(0), np.zeros(0))
    return {
        "rows": len(split),
        "source": split.source,
        "class_counts": _class_counts(split.labels, space),
        "chars": _stats(chars),
        "words": _stats(words),
        "words_histogram": {"edges": [round(float(e), 2) for e in edges], "counts": [int(c) for c in counts]},
    }


def _class_counts(labels: np.ndarray | None, space: LabelSpace) -> dict[str, int] | None:
    """Rows per class; for multi-label data the rows carrying each label (a row counts once per label)."""
    if labels is None:
        return None
    if labels.ndim == 2:
        totals = labels.sum(axis=0)
    else:
        totals = np.bincount(labels, minlength=space.num_labels)
    return {name: int(totals[i]) for i, name in enumerate(space.names)}


def _stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    p50, p90 = np.percentile(values, [50, 90])
    return {"min": float(values.min()), "p50": float(p50), "p90": float(p90), "max": float(values.max()),
            "mean": round(float(values.mean()), 2)}
