"""Which unlabelled texts to label next, by small-text's query strategies over a model's probabilities.

uncertainty = least confidence, margin = breaking ties (smallest gap between the two likeliest classes), entropy =
prediction entropy, diverse = the 10 x k most entropic texts spread out by k-means on their sentence embeddings
(the text nearest each centre is taken), random = a seeded random draw, the baseline every strategy must beat.
Multi-label probabilities are scored as one binary decision per label, averaged per text.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

Strategy = Literal["uncertainty", "margin", "entropy", "diverse", "random"]
STRATEGIES: tuple[str, ...] = ("uncertainty", "margin", "entropy", "diverse", "random")
DIVERSE_CANDIDATES = 10  # diverse: k-means runs over this many times k of the most uncertain texts


class _Scored:
    """The small-text classifier interface over probabilities computed beforehand: a dataset row's x holds its
    position in ``probs``."""

    def __init__(self, probs: np.ndarray):
        self.probs = probs
        self.num_classes = probs.shape[1]

    def predict_proba(self, dataset) -> np.ndarray:
        return self.probs[dataset.x[:, 0].astype(np.int64)]


def _pool(count: int):
    import warnings

    from small_text import SklearnDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # small-text's own internal call
        return SklearnDataset(np.arange(count, dtype=np.float64)[:, None], np.zeros(count, dtype=np.int64),
                              target_labels=np.array([0]))


def uncertainty_scores(probs: np.ndarray, strategy: Strategy, multilabel: bool = False) -> np.ndarray:
    """Higher = less certain, per text: small-text's confidence of the strategy, sign-flipped where needed."""
    from small_text import BreakingTies, LeastConfidence, PredictionEntropy

    if multilabel:
        binary = np.stack([1 - probs, probs], axis=-1).reshape(-1, 2)
        return uncertainty_scores(binary, strategy).reshape(probs.shape).mean(axis=1)
    if strategy == "uncertainty":
        return 1.0 - LeastConfidence().get_confidence(_Scored(probs), _pool(len(probs)), None, None, None)
    if strategy == "margin":
        return 1.0 - BreakingTies().get_confidence(_Scored(probs), _pool(len(probs)), None, None, None)
    return PredictionEntropy().get_confidence(_Scored(probs), _pool(len(probs)), None, None, None)


def select_indices(probs: np.ndarray, k: int, strategy: Strategy, *, embeddings: np.ndarray | None = None,
                   multilabel: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the k texts to label, most useful first; their uncertainty scores)."""
    k = min(k, len(probs))
    if strategy == "random":
        from small_text import RandomSampling

        np.random.seed(seed)  # RandomSampling draws from numpy's global generator
        chosen = RandomSampling().query(None, _pool(len(probs)), np.arange(len(probs)), np.array([], dtype=np.int64),
                                        np.array([], dtype=np.int64), n=k) if k < len(probs) else np.arange(k)
        return np.asarray(chosen), uncertainty_scores(probs, "entropy", multilabel)[chosen]
    basis = "entropy" if strategy == "diverse" else strategy
    scores = uncertainty_scores(probs, basis, multilabel)
    ranked = np.argsort(-scores, kind="stable")
    if strategy != "diverse":
        return ranked[:k], scores[ranked[:k]]
    if embeddings is None:
        raise ValueError("the diverse strategy needs the texts' embeddings")
    candidates = ranked[:DIVERSE_CANDIDATES * k]
    chosen = _spread(embeddings[candidates], k, seed)
    picked = candidates[chosen]
    picked = picked[np.argsort(-scores[picked], kind="stable")]
    return picked, scores[picked]


def _spread(embeddings: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Positions of k of these texts, one nearest each k-means centre (small-text's EmbeddingKMeans)."""
    from small_text import EmbeddingKMeans

    if k >= len(embeddings):
        return np.arange(len(embeddings))
    np.random.seed(seed)  # EmbeddingKMeans' KMeans takes no seed of its own; numpy's global one makes it repeatable
    none = np.array([], dtype=np.int64)
    return np.asarray(EmbeddingKMeans().query(None, _pool(len(embeddings)), np.arange(len(embeddings)), none, none,
                                              n=k, embeddings=embeddings))
