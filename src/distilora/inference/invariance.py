"""Batch invariance: a text's scores must not depend on which other texts share its batch.

With micro-batching, the batch a text lands in is decided by concurrent traffic; an engine whose scores move with
it (dynamic int8 quantisation picks activation scales per batch) gives a moderation decision that no audit can
reproduce. This check scores each text alone, all together, in reverse order, and each next to a long text.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

FP32_TOLERANCE = 1e-5  # probabilities; float summation order is the only difference left
INT8_TOLERANCE = 1e-4
LONG_TEXT = " ".join(["the package arrived late but the support team was kind and the refund came quickly"] * 12)


class Scorer(Protocol):
    task: str
    thresholds: list[float] | None

    def predict_proba(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> np.ndarray: ...


def batch_invariance(classifier: Scorer, texts: list[str], limit: int = 32) -> dict[str, Any]:
    """Largest probability difference and decision flips between scoring alone and in four kinds of batch."""
    texts = texts[:limit]
    alone = np.concatenate([classifier.predict_proba([t]) for t in texts])
    together = classifier.predict_proba(texts, batch_size=len(texts))
    reverse = classifier.predict_proba(texts[::-1], batch_size=len(texts))[::-1]
    beside_long = np.concatenate([classifier.predict_proba([t, LONG_TEXT], batch_size=2)[:1] for t in texts])
    from distilora.evaluation.metrics import decide

    def decisions(probs: np.ndarray) -> np.ndarray:
        return decide(classifier.task, probs, classifier.thresholds).reshape(len(probs), -1)

    batched = (together, reverse, beside_long)
    worst = max(float(np.abs(other - alone).max()) for other in batched)
    flips = sum(int((decisions(other) != decisions(alone)).any(axis=1).sum()) for other in batched)
    return {"texts": len(texts), "max_abs_prob_diff": worst, "decision_changes": flips}
