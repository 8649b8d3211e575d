"""Error analysis: where a classifier goes wrong, as plain data for the report."""
from __future__ import annotations

import numpy as np

LENGTH_EDGES = (0, 8, 16, 32, 64, 128, 256, 512)


def mistakes_table(texts: list[str], labels: np.ndarray, probs: np.ndarray, preds: np.ndarray,
                   label_names: list[str]) -> list[dict]:
    """Every wrong prediction (single-label), the least probability given to the true class first: the rows to
    read (and relabel) first. row is 1-based in the split."""
    wrong = np.flatnonzero(preds != labels)
    order = wrong[np.argsort(probs[wrong, labels[wrong]], kind="stable")]
    return [{"row": int(i) + 1, "true": label_names[int(labels[i])], "predicted": label_names[int(preds[i])],
             "p_true": round(float(probs[i, labels[i]]), 6), "p_predicted": round(float(probs[i, preds[i]]), 6),
             "text": texts[i]} for i in order]


def confident_mistakes(table: list[dict], k: int = 20) -> list[dict]:
    """The k rows of mistakes_table the model was surest about (highest probability of its wrong answer)."""
    ranked = sorted(table, key=lambda row: -row["p_predicted"])[:k]
    return [{"confidence": row["p_predicted"], "true": row["true"], "predicted": row["predicted"], "text": row["text"]}
            for row in ranked]


def confused_pairs(confusion: list[list[int]], label_names: list[str], k: int = 10) -> list[dict]:
    """The most frequent (true, predicted) mix-ups off the diagonal, with their share of the true class."""
    matrix = np.asarray(confusion)
    pairs = [(int(matrix[t, p]), t, p) for t in range(len(matrix)) for p in range(len(matrix)) if t != p and matrix[t, p]]
    pairs.sort(reverse=True)
    return [{"true": label_names[t], "predicted": label_names[p], "count": n,
             "share of true class": n / max(int(matrix[t].sum()), 1)} for n, t, p in pairs[:k]]


def accuracy_by_length(texts: list[str], labels: np.ndarray, preds: np.ndarray,
                       edges: tuple[int, ...] = LENGTH_EDGES) -> list[dict]:
    """Accuracy per word-count bucket: does the model fail on long (truncated) or very short texts?"""
    words = np.array([len(t.split()) for t in texts])
    correct = (preds == labels) if labels.ndim == 1 else (preds == labels).all(axis=1)
    rows = []
    for lo, hi in zip(edges, (*edges[1:], None)):
        mask = (words >= lo) & (words < hi) if hi is not None else words >= lo
        if mask.any():
            rows.append({"words": f"{lo}-{hi - 1}" if hi is not None else f"{lo}+", "n": int(mask.sum()),
                         "accuracy": float(correct[mask].mean())})
    return rows
