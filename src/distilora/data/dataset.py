"""In-memory splits: the shape every later stage (tokenising, training, evaluation) consumes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distilora.data.labels import LabelSpace


@dataclass
class TextSplit:
    """One split of texts with encoded labels and the source rows they came from (for error messages)."""

    name: str
    source: str
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray | None  # int64 [n] for binary/multiclass; float32 [n, k] 0/1 for multilabel; None = unlabelled
    rows: np.ndarray  # 1-based data-row numbers in the source file
    aux: np.ndarray | None = None  # float32 [n, m] teacher scores, NaN where a row has none
    origin: np.ndarray | None = None  # int64 [n]: the training text each row was made from (distill.augment), -1 none

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray, name: str | None = None) -> "TextSplit":
        idx = np.asarray(indices, dtype=np.int64)
        return TextSplit(
            name=name or self.name,
            source=self.source,
            texts=[self.texts[i] for i in idx],
            pairs=None if self.pairs is None else [self.pairs[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
            rows=self.rows[idx],
            aux=None if self.aux is None else self.aux[idx],
            origin=None if self.origin is None else self.origin[idx],
        )


@dataclass
class DataSplits:
    """Train / validation / optional test splits of one task, with its label space and auxiliary target names."""

    train: TextSplit
    validation: TextSplit
    test: TextSplit | None
    label_space: LabelSpace
    aux_names: list[str] | None = None
    unlabeled: TextSplit | None = None  # texts with teacher targets only (distill.unlabeled)
    validation_held_out: bool = True  # False: validation_fraction 0, the validation split is the training split
