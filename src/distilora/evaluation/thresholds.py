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
    return [tune_threshold(labels[:, j] >= 0.5, probs[:, j], rule) for j in range(probs.shape[1])]
