"""Checks the data decides, run right after the data is read and before anything is written: a run that cannot
work fails here in one line, instead of at its first evaluation with a .partial folder left behind."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from distilora.config import RunConfig
from distilora.errors import ConfigError
from distilora.runfolder import RunFolder

if TYPE_CHECKING:
    from distilora.data.dataset import DataSplits

UNKNOWN_SHARE_LIMIT = 0.5  # more unknown tokens than this in the training texts: the tokenizer does not fit them
PROBE_TEXTS = 256


def check_config(cfg: RunConfig) -> None:
    """Combinations that cannot work whatever the data, checked before any file is read."""
    texts = "these texts learn from the teacher's soft targets only"
    need_teacher = {"distill.unlabeled": (texts, "leave distill.unlabeled empty"),
                    "distill.augment": (texts, "set distill.augment to 0"),
                    "distill.fold_teachers": (texts, "leave distill.fold_teachers empty"),
                    "distill.ensemble": ("these runs score alongside the teacher", "leave distill.ensemble empty")}
    for field, (why, undo) in need_teacher.items():
        if getattr(cfg.distill, field.split(".")[1]) and not (cfg.distill.teacher and cfg.distill.alpha < 1):
            raise ConfigError(f"{field}: {why}; set distill.teacher and distill.alpha below 1, or {undo}")
    if cfg.distill.ensemble and cfg.distill.fold_teachers:
        raise ConfigError("distill.ensemble: training texts take their soft targets from distill.fold_teachers, "
                          "so an ensemble would score only the unlabelled texts; use one of the two")


def check_run(cfg: RunConfig, splits: "DataSplits") -> None:
    """Every config choice that depends on the task or the data, checked against them."""
    _check_distill(cfg, splits)
    _check_metric(cfg, splits)
    from distilora.training.losses import class_weights

    space = splits.label_space
    class_weights(cfg.train.class_weights, splits.train.labels, space.num_labels, space.is_multilabel)


def _check_distill(cfg: RunConfig, splits: "DataSplits") -> None:
    space = splits.label_space
    named = [("distill.teacher", cfg.distill.teacher)] if cfg.distill.teacher else []
    others = [("distill.fold_teachers", run) for run in cfg.distill.fold_teachers]
    for field, run in named + others + [("distill.ensemble", run) for run in cfg.distill.ensemble]:
        info = RunFolder(run).info()
        if info.labels != list(space.names) or info.task != space.task:
            raise ConfigError(f"{field}: {run} predicts {info.task} labels {info.labels}, this task has "
                              f"{space.task} labels {list(space.names)}; train a teacher on the same labels")


def _check_metric(cfg: RunConfig, splits: "DataSplits") -> None:
    """train.metric must be one of the validation metrics this task reports (computed here on placeholder logits)."""
    if cfg.train.metric == "auto":
        return
    from distilora.evaluation.metrics import evaluate_logits

    space = splits.label_space
    labels = splits.validation.labels
    metrics = evaluate_logits(space.task, np.zeros((len(labels), space.num_labels)), labels, list(space.names))
    known = sorted({k for k, v in metrics.items() if isinstance(v, float)} | {"loss"})
    if cfg.train.metric not in known:
        raise ConfigError(f"train.metric: '{cfg.train.metric}' is not a validation metric of a {space.task} task; "
                          f"choose one of {', '.join(known)}")


def check_tokenizer(tokenizer: Any, tokenizer_dir: str, texts: list[str]) -> None:
    """Refuse a tokenizer that maps most words of the training texts to its unknown token (a model folder without
    its tokenizer files gets a stand-in tokenizer from transformers that knows five tokens)."""
    unk_token = getattr(tokenizer.model, "unk_token", None)
    unk_id = tokenizer.token_to_id(unk_token) if unk_token else None
    if unk_id is None:
        return
    special = {tokenizer.token_to_id(t) for t in tokenizer.get_vocab() if t.startswith(("[", "<"))} - {unk_id}
    ids = [i for e in tokenizer.encode_batch(texts[:PROBE_TEXTS]) for i in e.ids if i not in special]
    share = float(np.mean([i == unk_id for i in ids])) if ids else 0.0
    if share > UNKNOWN_SHARE_LIMIT:
        raise ConfigError(f"model.backbone: the tokenizer in {tokenizer_dir} ({tokenizer.get_vocab_size()} tokens) "
                          f"turns {share:.0%} of the training text into {unk_token}; the folder lacks its real "
                          f"tokenizer files (tokenizer.json or vocab.txt): add them")
