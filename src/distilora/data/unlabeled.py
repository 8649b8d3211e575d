"""Texts with teacher targets only (distill.unlabeled files and distill.augment copies): they join training with
the teacher's soft targets and no label."""
from __future__ import annotations

import numpy as np

from distilora.config import DataConfig, DistillConfig
from distilora.data.dataset import TextSplit
from distilora.data.loading import read_texts
from distilora.errors import DataError


def load_unlabeled(distill: DistillConfig, cfg: DataConfig, train: TextSplit,
                   held_out: list[TextSplit]) -> TextSplit | None:
    """The texts of distill.unlabeled (one or more files; sampled to distill.unlabeled_size, seeded), then the
    distill.augment copies of the training texts, without any text of the validation / test splits, so that soft
    targets never carry an evaluation text into training. The files' texts also leave out the labelled training
    texts, which have their targets already (a pool that is the training file itself would repeat them)."""
    parts = _file_texts(distill, cfg, [train, *held_out]) if distill.unlabeled else []
    if distill.augment:
        from distilora.data.augment import augmented_copies

        copies = augmented_copies(train, distill.augment, distill.augment_drop, cfg.seed)
        parts.append(copies.subset(_outside(copies.texts, held_out)))
    return _joined(parts, cfg) if parts else None


def _file_texts(distill: DistillConfig, cfg: DataConfig, known: list[TextSplit]) -> list[TextSplit]:
    paths = [distill.unlabeled] if isinstance(distill.unlabeled, str) else list(distill.unlabeled)
    merged = _joined([read_texts(path, cfg, "distill.unlabeled") for path in paths], cfg)
    keep = _outside(merged.texts, known)
    if distill.unlabeled_size is not None and distill.unlabeled_size < len(keep):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(keep, distill.unlabeled_size, replace=False))
    if len(keep) == 0:
        raise DataError(f"{', '.join(paths)}: no unlabelled text is left (every one is also a training, validation "
                        f"or test text); give other texts in distill.unlabeled")
    return [merged.subset(keep)]


def _joined(parts: list[TextSplit], cfg: DataConfig) -> TextSplit:
    """One unlabelled split of several parts, in order."""
    return TextSplit(name="unlabeled", source=", ".join(part.source for part in parts),
                     texts=[text for part in parts for text in part.texts],
                     pairs=None if cfg.text_pair_column is None else [pair for part in parts for pair in part.pairs],
                     labels=None, rows=np.concatenate([part.rows for part in parts]),
                     origin=np.concatenate([_origin(part) for part in parts]))


def _origin(part: TextSplit) -> np.ndarray:
    return np.full(len(part), -1, dtype=np.int64) if part.origin is None else part.origin


def _outside(texts: list[str], splits: list[TextSplit]) -> np.ndarray:
    """Indices of the texts that are in none of the splits."""
    seen = {text for split in splits for text in split.texts}
    return np.array([i for i, text in enumerate(texts) if text not in seen], dtype=np.int64)
