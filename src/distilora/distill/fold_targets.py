"""Soft targets a student trains on: from the teacher, from several teachers at once (distill.ensemble), or from
out-of-fold teachers (distill.fold_teachers).

A teacher fitted to the training texts answers them with their labels again (on ToxicChat's training prompts it
agrees with the label on 99.4% at a mean probability of 0.99), so its soft targets there teach nothing the labels do
not. A fold teacher was trained like the teacher on the other folds and never saw its own fold's texts: its answers
on them, and on the distill.augment copies made from them, are what the teacher knows beyond the labels.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from distilora.distill.teacher import default_cache_dir, teacher_engine, teacher_logits
from distilora.errors import ConfigError
from distilora.runfolder import RunFolder

if TYPE_CHECKING:
    from distilora.config import DistillConfig
    from distilora.data.dataset import TextSplit

TEACHER = -1  # the fold of a text no fold teacher holds out (an unlabelled file's): distill.teacher scores it


def student_soft_targets(distill: "DistillConfig", train: "TextSplit", extra: "TextSplit | None", *,
                         batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Teacher logits for the training texts and for the teacher-only texts (None when there are none), each from
    the teacher that did not train on it where distill.fold_teachers names fold teachers, else from the teacher."""
    train_folds = (held_out_fold(distill.fold_teachers, train) if distill.fold_teachers
                   else np.full(len(train), TEACHER, dtype=np.int64))
    soft = _scored(distill, train, train_folds, batch_size)
    if extra is None:
        return soft, None
    origin = np.full(len(extra), -1, dtype=np.int64) if extra.origin is None else extra.origin
    extra_folds = np.where(origin >= 0, train_folds[np.maximum(origin, 0)], TEACHER)
    return soft, _scored(distill, extra, extra_folds, batch_size)


def held_out_fold(fold_teachers: list[str], train: "TextSplit") -> np.ndarray:
    """The fold teacher whose test split holds each training text (its texts and pairs as it read them)."""
    holder: dict[tuple[str, str | None], int] = {}
    for fold, run in enumerate(fold_teachers):
        for row in RunFolder(run).predictions("test"):
            holder.setdefault((row["text"], row.get("text_pair")), fold)
    keys = list(zip(train.texts, train.pairs or [None] * len(train)))
    missing = [i for i, key in enumerate(keys) if key not in holder]
    if missing:
        raise ConfigError(f"distill.fold_teachers: the training text of row {int(train.rows[missing[0]])} "
                          f"({len(missing)} of {len(train)} in all) is in no fold teacher's test split; these fold "
                          f"teachers were trained on another training split: train them for this one "
                          f"(ship.teacher_folds) or leave distill.fold_teachers empty")
    return np.asarray([holder[key] for key in keys], dtype=np.int64)


def _scored(distill: "DistillConfig", split: "TextSplit", folds: np.ndarray, batch_size: int) -> np.ndarray:
    """Each text's logits from its fold's teacher (cached per teacher and texts, like every teacher pass)."""
    out: np.ndarray | None = None
    for fold in np.unique(folds):
        rows = np.flatnonzero(folds == fold)
        part = split.subset(rows)
        logits = (_teacher_targets(distill, part, batch_size) if fold == TEACHER else
                  _logits(distill, distill.fold_teachers[fold], part, batch_size, f"fold {fold + 1} teacher"))
        if out is None:
            out = np.zeros((len(split), logits.shape[1]), dtype=np.float32)
        out[rows] = logits
    if out is None:
        return np.zeros((0, len(RunFolder(distill.teacher).info().labels)), dtype=np.float32)
    return out


def _teacher_targets(distill: "DistillConfig", part: "TextSplit", batch_size: int) -> np.ndarray:
    """The teacher's logits, or with distill.ensemble the logits of all the teachers' averaged outputs."""
    runs = [distill.teacher, *distill.ensemble]
    if len(runs) == 1:
        return _logits(distill, runs[0], part, batch_size, "teacher targets")
    each = [_logits(distill, run, part, batch_size, f"teacher {k + 1} of {len(runs)}") for k, run in enumerate(runs)]
    return ensemble_logits(each, distill.temperature, RunFolder(distill.teacher).info().task)


def _logits(distill: "DistillConfig", run: str, part: "TextSplit", batch_size: int, desc: str) -> np.ndarray:
    return teacher_logits(run, part.texts, part.pairs, cache_dir=default_cache_dir(), batch_size=batch_size,
                          backend=teacher_engine(run, distill.teacher_backend), desc=f"{desc} ({part.name})")


def ensemble_logits(each: list[np.ndarray], temperature: float, task: str) -> np.ndarray:
    """Logits whose softened outputs are the mean of the teachers' softened outputs at this temperature, so the
    distillation loss, which divides by the same temperature, sees the averaged probabilities exactly (per label
    for multi-label, over the classes otherwise). Computed in log space: a confident teacher's near-zero
    probabilities stay finite."""
    scaled = np.stack(each).astype(np.float64) / temperature  # [teachers, texts, labels]
    log_n = np.log(len(each))
    log_sum_exp = np.logaddexp.reduce  # along an axis
    if task == "multilabel":
        log_yes = log_sum_exp(-np.logaddexp(0.0, -scaled), axis=0) - log_n  # log mean sigmoid
        log_no = log_sum_exp(-np.logaddexp(0.0, scaled), axis=0) - log_n  # log mean (1 - sigmoid)
        return ((log_yes - log_no) * temperature).astype(np.float32)
    log_probs = scaled - log_sum_exp(scaled, axis=-1, keepdims=True)
    return ((log_sum_exp(log_probs, axis=0) - log_n) * temperature).astype(np.float32)
