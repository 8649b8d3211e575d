"""Find likely label errors: out-of-fold probabilities from k-fold cross-fitting, ranked by cleanlab.

Each row's probabilities come from a model that never saw its label: a logistic-regression head fitted on the other
folds' sentence embeddings (cheap; embeddings cached, see embeddings.py), or a run fine-tuned on the other folds
(fold_runs.py). cleanlab then flags the rows
whose given label the held-out model contradicts (confident learning) and scores every row's label quality
(self-confidence: the held-out probability of the given label). Multi-label tasks use cleanlab's multi-label
variants and one binary head per label.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from distilora.errors import DataError

NEAR_DUPLICATE_COSINE = 0.97  # sentence-embedding cosine above which two texts count as the same text


@dataclass
class LabelAudit:
    """Per training row: held-out probabilities, cleanlab's label-quality score, its issue flag, a suggested label
    (class indices; 0/1 rows for multi-label), and the rows it conflicts with as a near-duplicate."""

    pred_probs: np.ndarray
    quality: np.ndarray
    is_issue: np.ndarray
    suggested: np.ndarray
    conflicts: list[list[int]]

    def ranked(self) -> np.ndarray:
        """Row positions flagged by cleanlab or by a conflicting duplicate, worst label quality first."""
        flagged = np.flatnonzero(self.is_issue | np.array([bool(c) for c in self.conflicts], dtype=bool))
        return flagged[np.argsort(self.quality[flagged], kind="stable")]


def fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of every row, stratified by class (by rarest label for multi-label) and seeded; fewer folds when a
    class has fewer rows than folds."""
    from sklearn.model_selection import StratifiedKFold

    from distilora.data.loading import label_strata

    strata = label_strata(labels)
    smallest = int(np.unique(strata, return_counts=True)[1].min())
    if smallest < 2:
        raise DataError(f"a class has {smallest} training row(s); cross-fitting needs at least 2 rows per class")
    assignment = np.zeros(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(min(folds, smallest), shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), strata)):
        assignment[held] = fold
    return assignment


def head_out_of_fold(features: np.ndarray, labels: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """[n, classes] probabilities for every row from a logistic-regression head fitted on the other folds."""
    assignment = fold_assignment(labels, folds, seed)
    classes = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1
    out = np.zeros((len(labels), classes), dtype=np.float64)
    for fold in range(int(assignment.max()) + 1):
        held = assignment == fold
        out[held] = _held_out_probs(features, labels, np.flatnonzero(~held), np.flatnonzero(held), classes, seed)
    return out


def _fit_head(features: np.ndarray, labels: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = LogisticRegression(max_iter=2000, random_state=seed)
    if labels.ndim == 2:
        head = OneVsRestClassifier(head)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a label with no positive row in a fold is predicted constant
        return make_pipeline(StandardScaler(), head).fit(features, labels)


def _held_out_probs(features: np.ndarray, labels: np.ndarray, fit_rows: np.ndarray, held_rows: np.ndarray,
                    classes: int, seed: int) -> np.ndarray:
    model = _fit_head(features[fit_rows], labels[fit_rows], seed)
    if labels.ndim == 2:
        return model.predict_proba(features[held_rows])
    probs = np.zeros((len(held_rows), classes))
    probs[:, model.classes_] = model.predict_proba(features[held_rows])  # a class absent from the fold stays at 0
    return probs


def audit_labels(pred_probs: np.ndarray, labels: np.ndarray, features: np.ndarray, texts: list[str]) -> LabelAudit:
    """Let cleanlab flag and score each row from its out-of-fold probabilities; near-duplicates (by ``features``,
    unit-length embeddings) with different labels are found too."""
    if labels.ndim == 2:
        from cleanlab.multilabel_classification.filter import find_label_issues
        from cleanlab.multilabel_classification.rank import get_label_quality_scores

        given = [list(np.flatnonzero(row)) for row in labels]
        is_issue = find_label_issues(given, pred_probs)
        quality = get_label_quality_scores(given, pred_probs)
        suggested = (pred_probs >= 0.5).astype(np.int64)
    else:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        is_issue = find_label_issues(labels, pred_probs)
        quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
        suggested = pred_probs.argmax(axis=1)
    return LabelAudit(pred_probs=pred_probs, quality=np.asarray(quality, dtype=np.float64),
                      is_issue=np.asarray(is_issue, dtype=bool), suggested=suggested,
                      conflicts=conflicting_duplicates(features, labels, texts))


def conflicting_duplicates(features: np.ndarray, labels: np.ndarray, texts: list[str], *,
                           cosine: float = NEAR_DUPLICATE_COSINE, block: int = 1024) -> list[list[int]]:
    """For each row, the other rows holding the same text (after case and space folding) or a near-identical one
    (embedding cosine >= ``cosine``) under a different label."""
    conflicts: list[set[int]] = [set() for _ in texts]
    key = [" ".join(text.lower().split()) for text in texts]
    first_seen: dict[str, list[int]] = {}
    for row, text in enumerate(key):
        first_seen.setdefault(text, []).append(row)
    label_rows = labels.reshape(len(labels), -1)
    for rows in (r for r in first_seen.values() if len(r) > 1):
        _mark_conflicts(conflicts, label_rows, rows, rows)
    for start in range(0, len(texts), block):
        similar = features[start:start + block] @ features.T
        for offset, others in enumerate(similar >= cosine):
            row = start + offset
            _mark_conflicts(conflicts, label_rows, [row], [int(j) for j in np.flatnonzero(others) if j != row])
    return [sorted(c) for c in conflicts]


def _mark_conflicts(conflicts: list[set[int]], labels: np.ndarray, rows: list[int], others: list[int]) -> None:
    for a in rows:
        for b in others:
            if a != b and not np.array_equal(labels[a], labels[b]):
                conflicts[a].add(b)
                conflicts[b].add(a)
