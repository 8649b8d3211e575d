"""Perturbed copies of the training texts (distill.augment): the teacher scores them, so the student learns the
teacher's answers on many more inputs than the labelled set holds, as in task-specific distillation with data
augmentation (Tang et al., 2019; TinyBERT). Each copy either drops words at random or keeps one contiguous span."""
from __future__ import annotations

import numpy as np

from distilora.data.dataset import TextSplit


def augmented_copies(train: TextSplit, copies: int, drop: float, seed: int) -> TextSplit:
    """Up to ``copies`` perturbed versions of every training text, unlabelled; a copy that comes out the same as a
    training text, or as an earlier copy, is left out (a text of one word has none)."""
    rng = np.random.default_rng([seed, 20191])
    seen = {" ".join(text.split()) for text in train.texts}
    texts, pairs, origin = [], [], []
    for i, text in enumerate(train.texts):
        words = text.split()
        for _ in range(copies):
            copy = " ".join(_perturb(words, drop, rng))
            if copy in seen:
                continue
            seen.add(copy)
            texts.append(copy)
            origin.append(i)
            if train.pairs is not None:
                pairs.append(train.pairs[i])
    origin = np.asarray(origin, dtype=np.int64)
    return TextSplit(name="augmented", source=f"{train.source} (distill.augment)", texts=texts,
                     pairs=None if train.pairs is None else pairs, labels=None, rows=train.rows[origin], origin=origin)


def _perturb(words: list[str], drop: float, rng: np.random.Generator) -> list[str]:
    """Half the time each word is dropped with probability ``drop`` (one at least is kept); otherwise a span of at
    least half the words is kept, which reads like a shorter prompt on the same subject."""
    if len(words) < 2:
        return words
    if rng.random() < 0.5:
        kept = [word for word in words if rng.random() >= drop]
        return kept or [words[int(rng.integers(len(words)))]]
    length = int(rng.integers((len(words) + 1) // 2, len(words)))
    start = int(rng.integers(0, len(words) - length + 1))
    return words[start:start + length]
