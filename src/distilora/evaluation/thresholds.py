"""Decision thresholds picked on validation: best F1, or a target precision or recall."""
from __future__ import annotations

import numpy as np

from distilora.config import parse_threshold_rule


def tune_threshold(y_true: np.ndarray, scores: np.ndarray, rule: str) -> float:
    """One threshold for one positive class. 'f1' maximises F1; 'precision:P' keeps precision >= P with the most
    recall; 'recall:R' keeps recall >= R with the most precision. Falls back to 0.5 when there is nothing to tune.
    The threshold sits halfway between the last score called positive and the next lower one."""
    kind, target = parse_threshold_rule(rule)
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if kind == "none" or y.all() or not y.any():
        return 0.5
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # a threshold can only sit between distinct scores
    tp = np.cumsum(y_sorted)[last_of_tie]
    fp = np.cumsum(~y_sorted)[last_of_tie]
    candidates = s_sorted[last_of_tie]
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    if kind == "f1":
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
        best = int(np.argmax(f1))
    elif kind == "precision":
        ok = np.flatnonzero(precision >= target)
        best = int(ok[np.argmax(recall[ok])]) if ok.size else int(np.argmax(precision))
    else:
        ok = np.flatnonzero(recall >= target)
        best = int(ok[np.argmax(precision[ok])]) if ok.size else len(candidates) - 1
    # halfway to the next lower score (or to 0): a score exactly on the line would flip with float noise, e.g.
    # between the PyTorch and ONNX engines
    below = candidates[best + 1] if best + 1 < len(candidates) else 0.0
    return float((candidates[best] + below) / 2)


def tune_thresholds(task: str, probs: np.ndarray, labels: np.ndarray, rule: str, default: float) -> list[float] | None:
    """Per-task thresholds: [t] on P(class 1) for binary, one per label for multi-label, None for multiclass."""
    if task == "multiclass":
        return None
    if parse_threshold_rule(rule)[0] == "none":
        return [default] * (1 if task == "binary" else probs.shape[1])
    if task == "binary":
        return [tune_threshold(labels == 1, probs[:, 1], rule)]
    if rule == "f1":
        return multilabel_f1_thresholds(probs, labels >= 0.5)
    return [tune_threshold(labels[:, j] >= 0.5, probs[:, j], rule) for j in range(probs.shape[1])]


def multilabel_f1_thresholds(probs: np.ndarray, y: np.ndarray, seed: int = 0) -> list[float]:
    """One threshold per label, each either the label's own best-F1 threshold or the one shared threshold that
    maximises micro-F1 over every label cell, whichever gives the label more F1 on held-out validation rows
    (2-fold: tuned on one half, counted on the other). A rare label's own threshold, tuned on its handful of
    positives, overfits (0.006 here, 0.64 there) and can lower micro- and macro-F1 alike; it is kept only where
    it carries over to texts it was not tuned on."""
    own = [tune_threshold(y[:, j], probs[:, j], "f1") for j in range(y.shape[1])]
    shared = tune_threshold(y.ravel(), probs.ravel(), "f1")
    halves = np.array_split(np.random.default_rng(seed).permutation(len(y)), 2)
    own_counts, shared_counts = np.zeros((y.shape[1], 3)), np.zeros((y.shape[1], 3))
    for fit, held in (halves, halves[::-1]):
        fit_own = np.array([tune_threshold(y[fit, j], probs[fit, j], "f1") for j in range(y.shape[1])])
        fit_shared = tune_threshold(y[fit].ravel(), probs[fit].ravel(), "f1")
        own_counts += _f1_counts(y[held], probs[held] >= fit_own)
        shared_counts += _f1_counts(y[held], probs[held] >= fit_shared)
    keep_own = _f1(own_counts) > _f1(shared_counts)
    return [o if keep else shared for o, keep in zip(own, keep_own)]


def _f1_counts(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per label (true positives, false positives, false negatives)."""
    return np.stack([(predicted & y).sum(0), (predicted & ~y).sum(0), (~predicted & y).sum(0)], axis=1)


def _f1(counts: np.ndarray) -> np.ndarray:
    tp, fp, fn = counts.T
    return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(len(tp)), where=(2 * tp + fp + fn) > 0)
