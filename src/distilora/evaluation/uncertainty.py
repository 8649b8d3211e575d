"""How far a score can be trusted: bootstrap intervals of a run's headline metrics on its split, and of the
difference between two runs scored on the same texts (paired: both runs are scored on the same resamples).

A 1,000-text validation split or a 872-sentence test set moves accuracy by about a point from one draw of texts to
the next, so a gap of a few texts between two runs says nothing. These intervals say how large a gap must be to
survive another sample of texts of the same size; they do not cover the spread between training seeds, which comes
on top. Pure numpy on predicted and gold labels: no torch, no run folders.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
_CHUNK = 250  # resamples drawn at once: a (chunk x texts) count matrix stays a few MB on a 10,000-text split


def headline_metrics(task: str) -> tuple[str, ...]:
    """The metrics the intervals are given for: the ones a reader compares runs by."""
    return {"binary": ("accuracy", "f1"), "multiclass": ("accuracy", "macro_f1"),
            "multilabel": ("subset_accuracy", "micro_f1", "macro_f1")}[task]


def weighted_scores(task: str, labels: np.ndarray, preds: np.ndarray, weights: np.ndarray,
                    n_classes: int) -> dict[str, np.ndarray]:
    """Each headline metric under each row of weights (how often each text is counted: all ones for the split
    itself, bootstrap counts for a resample). Returns one array per metric, one value per row of weights. Macro F1
    averages over all n_classes, a class with no texts counting 0, as the split's own metrics do."""
    y, p = np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    total = w.sum(1)
    if task == "multilabel":
        tp, predicted, actual = w @ ((p == 1) & (y == 1)), w @ (p == 1), w @ (y == 1)  # (rows, labels)
        return {"subset_accuracy": w @ (p == y).all(1) / total,
                "micro_f1": _f1(tp.sum(1), predicted.sum(1), actual.sum(1)),
                "macro_f1": _f1(tp, predicted, actual).mean(1)}
    classes = np.arange(n_classes)
    right = w @ (p == y)
    if task == "binary":
        return {"accuracy": right / total, "f1": _f1(w @ ((p == 1) & (y == 1)), w @ (p == 1), w @ (y == 1))}
    tp = w @ ((p[:, None] == classes) & (y[:, None] == classes))
    return {"accuracy": right / total,
            "macro_f1": _f1(tp, w @ (p[:, None] == classes), w @ (y[:, None] == classes)).mean(1)}


def _f1(tp: np.ndarray, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    denominator = predicted + actual
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator, dtype=np.float64), where=denominator > 0)


def bootstrap_counts(n: int, resamples: int = RESAMPLES, seed: int = 0) -> Iterator[np.ndarray]:
    """Bootstrap resamples of n texts as count matrices, a chunk at a time (the same seed gives the same resamples,
    which is what makes two runs' scores paired)."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=size)


def metric_intervals(task: str, labels: np.ndarray, preds: np.ndarray, n_classes: int, resamples: int = RESAMPLES,
                     seed: int = 0) -> dict[str, dict[str, float]]:
    """Per headline metric: its value on the split and the percentile bootstrap interval at LEVEL."""
    point = weighted_scores(task, labels, preds, np.ones(len(labels)), n_classes)
    draws = _draws(task, labels, [preds], n_classes, resamples, seed)[0]
    return {m: {"value": float(point[m][0]), **_interval(draws[m])} for m in point}


def paired_difference(task: str, labels: np.ndarray, preds_a: np.ndarray, preds_b: np.ndarray, n_classes: int,
                      resamples: int = RESAMPLES, seed: int = 0) -> dict[str, dict[str, float | str]]:
    """Per headline metric: b minus a on the split, its paired bootstrap interval at LEVEL, and b's verdict: "ahead"
    or "behind" when the interval leaves out zero, else "within noise"."""
    ones = np.ones(len(labels))
    a_point, b_point = (weighted_scores(task, labels, p, ones, n_classes) for p in (preds_a, preds_b))
    a_draws, b_draws = _draws(task, labels, [preds_a, preds_b], n_classes, resamples, seed)
    out: dict[str, dict[str, float | str]] = {}
    for m in a_point:
        bounds = _interval(b_draws[m] - a_draws[m])
        verdict = "ahead" if bounds["low"] > 0 else "behind" if bounds["high"] < 0 else "within noise"
        out[m] = {"difference": float(b_point[m][0] - a_point[m][0]), **bounds, "verdict": verdict}
    return out


def _draws(task: str, labels: np.ndarray, preds: list[np.ndarray], n_classes: int, resamples: int,
           seed: int) -> list[dict[str, np.ndarray]]:
    """The headline metrics of each prediction set on the same bootstrap resamples."""
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in preds]
    for counts in bootstrap_counts(len(labels), resamples, seed):
        for i, p in enumerate(preds):
            parts[i].append(weighted_scores(task, labels, p, counts, n_classes))
    return [{m: np.concatenate([chunk[m] for chunk in chunks]) for m in chunks[0]} for chunks in parts]


def _interval(values: np.ndarray) -> dict[str, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {"low": float(low), "high": float(high)}
