"""Temperature scaling: one scalar fitted on validation logits so predicted probabilities mean what they say."""
from __future__ import annotations

import numpy as np

from distilora.evaluation.metrics import log_loss, probabilities


def fit_temperature(task: str, logits: np.ndarray, labels: np.ndarray) -> float:
    """The T that minimises validation NLL (golden-section search over log T in [1/20, 20]); never worse than T=1."""
    def nll(log_t: float) -> float:
        return log_loss(task, probabilities(task, logits, float(np.exp(log_t))), labels)

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    best = (a + b) / 2
    return float(np.exp(best)) if nll(best) < nll(0.0) else 1.0


MIN_CALIBRATION_TEXTS = 50


def checked_temperature(task: str, logits: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[float, dict]:
    """A temperature only where it helps texts it was not fitted on: fitted on each half of validation and judged on
    the other half; kept (then refitted on all of validation) only when that held-out NLL goes down. Fitting and
    judging on the same texts would always look like an improvement, even on 24 texts."""
    n = len(labels)
    if n < MIN_CALIBRATION_TEXTS:
        return 1.0, {"kept": False, "temperature": 1.0, "n": n,
                     "why": f"{n} validation texts are too few to fit a temperature (needs {MIN_CALIBRATION_TEXTS})"}
    order = np.random.default_rng(seed).permutation(n)
    halves = (order[::2], order[1::2])
    before = after = 0.0
    for fit_rows, held_out in (halves, halves[::-1]):
        t = fit_temperature(task, logits[fit_rows], labels[fit_rows])
        before += log_loss(task, probabilities(task, logits[held_out]), labels[held_out]) * len(held_out) / n
        after += log_loss(task, probabilities(task, logits[held_out], t), labels[held_out]) * len(held_out) / n
    note = {"n": n, "heldout_nll_before": round(before, 5), "heldout_nll_after": round(after, 5)}
    if after >= before:
        return 1.0, {**note, "kept": False, "temperature": 1.0,
                     "why": "a fitted temperature did not lower the NLL of held-out validation texts"}
    temperature = fit_temperature(task, logits, labels)
    return temperature, {**note, "kept": True, "temperature": temperature,
                         "why": "lowers the NLL of held-out validation texts"}


def reliability_bins(confidences: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> dict[str, list[float]]:
    """Per equal-width bin: mean confidence, accuracy and count (the data behind a reliability diagram)."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    bins = np.minimum((confidences * n_bins).astype(int), n_bins - 1)
    out: dict[str, list[float]] = {"lower": [], "upper": [], "confidence": [], "accuracy": [], "count": []}
    for b in range(n_bins):
        mask = bins == b
        out["lower"].append(b / n_bins)
        out["upper"].append((b + 1) / n_bins)
        out["count"].append(int(mask.sum()))
        out["confidence"].append(float(confidences[mask].mean()) if mask.any() else float("nan"))
        out["accuracy"].append(float(correct[mask].mean()) if mask.any() else float("nan"))
    return out
