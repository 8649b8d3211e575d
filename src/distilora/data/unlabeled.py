"""Unlabelled texts for distillation (distill.unlabeled): they join training with the teacher's soft targets only."""
from __future__ import annotations

import numpy as np

from distilora.config import DataConfig, DistillConfig
from distilora.data.dataset import TextSplit
from distilora.data.loading import read_texts
from distilora.errors import DataError


def load_unlabeled(distill: DistillConfig, cfg: DataConfig, held_out: list[TextSplit]) -> TextSplit:
    """The texts of distill.unlabeled (one or more files), without any text of the validation / test splits, so
    that soft targets never carry an evaluation text into training; sampled to distill.unlabeled_size (seeded)."""
    paths = [distill.unlabeled] if isinstance(distill.unlabeled, str) else list(distill.unlabeled)
    parts = [read_texts(path, cfg, "distill.unlabeled") for path in paths]
    texts = [text for part in parts for text in part.texts]
    pairs = None if cfg.text_pair_column is None else [pair for part in parts for pair in part.pairs]
    evaluation = {text for split in held_out for text in split.texts}
    keep = np.array([i for i, text in enumerate(texts) if text not in evaluation], dtype=np.int64)
    if distill.unlabeled_size is not None and distill.unlabeled_size < len(keep):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(keep, distill.unlabeled_size, replace=False))
    if len(keep) == 0:
        raise DataError(f"{', '.join(paths)}: no unlabelled text is left (every one is also a validation or test "
                        f"text); give other texts in distill.unlabeled")
    merged = TextSplit(name="unlabeled", source=", ".join(paths), texts=texts, pairs=pairs, labels=None,
                       rows=np.concatenate([part.rows for part in parts]))
    return merged.subset(keep)
