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


def batch_invariance(classifier: Scorer, texts: list[str], pairs: list[str] | None = None,
                     limit: int = 32) -> dict[str, Any]:
    """Largest probability difference and decision flips between scoring alone and in four kinds of batch (text
    pairs stay pairs: the long neighbour is paired with itself)."""
    items = list(zip(texts, pairs if pairs is not None else [None] * len(texts)))[:limit]

    def score(batch: list[tuple[str, str | None]]) -> np.ndarray:
        second = None if pairs is None else [pair for _, pair in batch]
        return classifier.predict_proba([text for text, _ in batch], second, batch_size=len(batch))

    alone = np.concatenate([score([item]) for item in items])
    together = score(items)
    reverse = score(items[::-1])[::-1]
    beside_long = np.concatenate([score([item, (LONG_TEXT, None if pairs is None else LONG_TEXT)])[:1]
                                  for item in items])
    from distilora.evaluation.metrics import decide

    def decisions(probs: np.ndarray) -> np.ndarray:
        return decide(classifier.task, probs, classifier.thresholds).reshape(len(probs), -1)

    batched = (together, reverse, beside_long)
    worst = max(float(np.abs(other - alone).max()) for other in batched)
    flips = sum(int((decisions(other) != decisions(alone)).any(axis=1).sum()) for other in batched)
    return {"texts": len(items), "max_abs_prob_diff": worst, "decision_changes": flips}
