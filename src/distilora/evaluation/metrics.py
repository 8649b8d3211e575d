"""Metrics of a classifier from its logits: pure functions on numpy arrays (no torch, no training knowledge)."""
from __future__ import annotations

from typing import Any

import numpy as np

_PRIMARY = {"binary": "f1", "multiclass": "macro_f1", "multilabel": "micro_f1"}
# the figures a summary shows, where the task has them (multi-label: subset accuracy, never a per-cell "accuracy")
HEADLINE_METRICS = ("accuracy", "subset_accuracy", "f1", "macro_f1", "micro_f1", "samples_f1", "roc_auc", "pr_auc",
                    "ece")


def primary_metric(task: str) -> str:
    """The validation metric that picks the best checkpoint by default."""
    return _PRIMARY[task]


def probabilities(task: str, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax (single-label) or sigmoid (multi-label) of temperature-scaled logits."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if task == "multilabel":
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def decide(task: str, probs: np.ndarray, thresholds: list[float] | None) -> np.ndarray:
    """Predicted classes: P(positive) >= t (binary), argmax (multiclass), or per-label 0/1 (multilabel)."""
    if task == "binary":
        t = 0.5 if not thresholds else thresholds[0]
        return (probs[:, 1] >= t).astype(np.int64)
    if task == "multilabel":
        t = np.full(probs.shape[1], 0.5) if not thresholds else np.asarray(thresholds)
        return (probs >= t).astype(np.int64)
    return probs.argmax(axis=1).astype(np.int64)


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros(len(tp)), where=(tp + fn) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(tp)), where=(precision + recall) > 0)
    return precision, recall, f1


def _auc(y: np.ndarray, score: np.ndarray) -> tuple[float | None, float | None]:
    """(ROC-AUC, PR-AUC as average precision), or None where only one class is present."""
    if y.min() == y.max():
        return None, None
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(y, score)), float(average_precision_score(y, score))


def _per_class(names: list[str], tp, fp, fn, support) -> dict[str, dict[str, float]]:
    p, r, f = _prf(tp, fp, fn)
    return {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, name in enumerate(names)}


def _averages(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    rows = list(per_class.values())
    support = np.array([r["support"] for r in rows], dtype=np.float64)
    out = {}
    for key in ("precision", "recall", "f1"):
        values = np.array([r[key] for r in rows])
        out[f"macro_{key}"] = float(values.mean())
        out[f"weighted_{key}"] = float((values * support).sum() / max(support.sum(), 1))
    return out


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """Support-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    bins = np.minimum((confidences * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidences[mask].mean())
    return float(total / max(len(confidences), 1))


def calibration_inputs(task: str, probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) pairs: of the predicted class (single-label) or of every label decision (multi-label)."""
    if task == "multilabel":
        confidence = np.where(probs >= 0.5, probs, 1 - probs).ravel()
        return confidence, ((probs >= 0.5) == (labels >= 0.5)).ravel()
    return probs.max(axis=1), probs.argmax(axis=1) == labels


def log_loss(task: str, probs: np.ndarray, labels: np.ndarray) -> float:
    eps = 1e-12
    if task == "multilabel":
        p = np.clip(probs, eps, 1 - eps)
        return float(-(labels * np.log(p) + (1 - labels) * np.log(1 - p)).mean())
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1)).mean())


def evaluate_logits(task: str, logits: np.ndarray, labels: np.ndarray, label_names: list[str],
                    temperature: float = 1.0, thresholds: list[float] | None = None) -> dict[str, Any]:
    """Every metric of a split as a JSON-serialisable dict (the classification report people know, and more)."""
    probs = probabilities(task, logits, temperature)
    preds = decide(task, probs, thresholds)
    k = len(label_names)
    out: dict[str, Any] = {"task": task, "n": int(len(labels)), "temperature": float(temperature),
                           "thresholds": thresholds}
    if task == "multilabel":
        y = labels.astype(np.int64)
        tp, fp, fn = ((preds == 1) & (y == 1)).sum(0), ((preds == 1) & (y == 0)).sum(0), ((preds == 0) & (y == 1)).sum(0)
        out["per_class"] = _per_class(label_names, tp, fp, fn, y.sum(0))
        out.update(_averages(out["per_class"]))
        micro_p, micro_r, micro_f = _prf(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()]))
        out.update(micro_precision=float(micro_p[0]), micro_recall=float(micro_r[0]), micro_f1=float(micro_f[0]))
        stp, sfp, sfn = ((preds == 1) & (y == 1)).sum(1), ((preds == 1) & (y == 0)).sum(1), ((preds == 0) & (y == 1)).sum(1)
        _, _, sample_f1 = _prf(stp, sfp, sfn)
        sample_f1[(stp + sfp + sfn) == 0] = 1.0  # nothing predicted and nothing true: a perfect row
        out["samples_f1"] = float(sample_f1.mean())
        # no plain "accuracy" for multi-label: the share of right label cells (0.89 when nothing is ever predicted on
        # a sparse 28-label set) reads far better than the task is; both meanings get their own names
        out["subset_accuracy"] = float((preds == y).all(1).mean())
        out["label_accuracy"] = float((preds == y).mean())
        aucs = [(_auc(y[:, j], probs[:, j])) for j in range(k)]
        for j, name in enumerate(label_names):
            out["per_class"][name]["roc_auc"], out["per_class"][name]["pr_auc"] = aucs[j]
        rocs, prs = [a for a, _ in aucs if a is not None], [p for _, p in aucs if p is not None]
        out["roc_auc"] = float(np.mean(rocs)) if rocs else None
        out["pr_auc"] = float(np.mean(prs)) if prs else None
        out["confusion_matrix"] = [[[int(((preds[:, j] == a) & (y[:, j] == b)).sum()) for a in (0, 1)] for b in (0, 1)]
                                   for j in range(k)]  # per label: rows true 0/1, columns predicted 0/1
    else:
        y = labels.astype(np.int64)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (y, preds), 1)
        tp = np.diag(confusion)
        out["confusion_matrix"] = confusion.tolist()
        out["per_class"] = _per_class(label_names, tp, confusion.sum(0) - tp, confusion.sum(1) - tp, confusion.sum(1))
        out.update(_averages(out["per_class"]))
        out["accuracy"] = float((preds == y).mean())
        if task == "binary":
            positive = out["per_class"][label_names[1]]
            out.update(precision=positive["precision"], recall=positive["recall"], f1=positive["f1"])
            out["roc_auc"], out["pr_auc"] = _auc(y, probs[:, 1])
        else:
            pairs = [_auc((y == c).astype(int), probs[:, c]) for c in range(k)]
            rocs, prs = [a for a, _ in pairs if a is not None], [p for _, p in pairs if p is not None]
            out["roc_auc"] = float(np.mean(rocs)) if rocs else None
            out["pr_auc"] = float(np.mean(prs)) if prs else None
    out["log_loss"] = log_loss(task, probs, labels)
    out["ece"] = expected_calibration_error(*calibration_inputs(task, probs, labels))
    return out


def classification_report_text(metrics: dict[str, Any], label_names: list[str]) -> str:
    """The scikit-learn-style table: per class precision / recall / F1 / support, then the averages."""
    width = max(12, *(len(n) for n in label_names))
    lines = [f"{'':>{width}}  precision    recall  f1-score   support", ""]
    for name in label_names:
        row = metrics["per_class"][name]
        lines.append(f"{name:>{width}}  {row['precision']:9.4f} {row['recall']:9.4f} {row['f1']:9.4f} {row['support']:9d}")
    lines.append("")
    total = sum(metrics["per_class"][n]["support"] for n in label_names)
    if metrics["task"] == "multilabel":
        lines.append(f"{'micro avg':>{width}}  {metrics['micro_precision']:9.4f} {metrics['micro_recall']:9.4f} "
                     f"{metrics['micro_f1']:9.4f} {total:9d}")
    else:
        lines.append(f"{'accuracy':>{width}}  {'':9} {'':9} {metrics['accuracy']:9.4f} {metrics['n']:9d}")
    for avg in ("macro", "weighted"):
        lines.append(f"{avg + ' avg':>{width}}  {metrics[f'{avg}_precision']:9.4f} {metrics[f'{avg}_recall']:9.4f} "
                     f"{metrics[f'{avg}_f1']:9.4f} {total:9d}")
    if metrics["task"] == "multilabel":
        lines.append(f"{'samples f1':>{width}}  {'':9} {'':9} {metrics['samples_f1']:9.4f} {metrics['n']:9d}")
        lines += ["", f"subset accuracy (every label of a text right) {metrics['subset_accuracy']:.4f}; "
                      f"label accuracy (share of right text x label cells) {metrics['label_accuracy']:.4f}"]
    extras = [f"{key} {metrics[key]:.4f}" for key in ("roc_auc", "pr_auc", "log_loss", "ece") if metrics.get(key) is not None]
    if extras:
        lines.extend(["", "  ".join(extras)])
    return "\n".join(lines)


def confusion_matrix_text(metrics: dict[str, Any], label_names: list[str]) -> str:
    """The confusion matrix as a table: rows the true class, columns the predicted one; for multi-label, each
    label's true/false positives and negatives."""
    matrix = metrics["confusion_matrix"]
    if metrics["task"] == "multilabel":
        width = max(12, *(len(n) for n in label_names))
        lines = [f"{'':>{width}}  {'TP':>7} {'FP':>7} {'FN':>7} {'TN':>7}"]
        for name, ((tn, fp), (fn, tp)) in zip(label_names, matrix):
            lines.append(f"{name:>{width}}  {tp:7d} {fp:7d} {fn:7d} {tn:7d}")
        return "\n".join(lines)
    width = max(11, *(len(n) for n in label_names), *(len(str(v)) for row in matrix for v in row))
    lines = [f"{'true / pred':>{width}}  " + " ".join(f"{n:>{width}}" for n in label_names)]
    for name, row in zip(label_names, matrix):
        lines.append(f"{name:>{width}}  " + " ".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)
