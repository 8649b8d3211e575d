"""Classification losses: cross-entropy (optionally weighted / smoothed), focal, and BCE for multi-label."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from distilora.config import TrainConfig
from distilora.errors import ConfigError

if TYPE_CHECKING:
    import torch


def class_weights(setting: str | list[float], labels: np.ndarray, num_labels: int, multilabel: bool) -> np.ndarray | None:
    """Per-class weights from the training labels: 'auto' = n / (k * count) (mean weight 1 over samples);
    for multi-label, 'auto' gives BCE positive weights negatives / positives per label."""
    if setting == "none":
        return None
    if isinstance(setting, list):
        if len(setting) != num_labels:
            raise ConfigError(f"train.class_weights: got {len(setting)} weights for {num_labels} classes")
        return np.asarray(setting, dtype=np.float32)
    if multilabel:
        positives = labels.sum(axis=0)
        negatives = len(labels) - positives
        return (negatives / np.maximum(positives, 1)).astype(np.float32)
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    return (len(labels) / (num_labels * np.maximum(counts, 1))).astype(np.float32)


def classification_loss(logits: "torch.Tensor", labels: "torch.Tensor", *, multilabel: bool, cfg: TrainConfig,
                        weights: "torch.Tensor | None" = None) -> "torch.Tensor":
    """The hard-label loss of a batch, as chosen by train.loss (auto = CE or BCE by task)."""
    import torch.nn.functional as F

    kind = cfg.loss if cfg.loss != "auto" else ("bce" if multilabel else "ce")
    if multilabel:
        if kind == "ce":
            raise ConfigError("train.loss: 'ce' is for single-label tasks; use 'bce' or 'focal' for multi-label")
        per_element = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weights, reduction="none")
        if kind == "focal":
            p = logits.sigmoid()
            p_t = p * labels + (1 - p) * (1 - labels)
            per_element = per_element * (1 - p_t).pow(cfg.focal_gamma)
        return per_element.mean()
    if kind == "bce":
        raise ConfigError("train.loss: 'bce' is for multi-label tasks; use 'ce' or 'focal'")
    if kind == "focal":
        log_p = F.log_softmax(logits, dim=-1)
        log_p_t = log_p.gather(1, labels[:, None]).squeeze(1)
        per_sample = -(1 - log_p_t.exp()).pow(cfg.focal_gamma) * log_p_t
        if weights is not None:
            per_sample = per_sample * weights[labels]
            return per_sample.sum() / weights[labels].sum()
        return per_sample.mean()
    return F.cross_entropy(logits, labels, weight=weights, label_smoothing=cfg.label_smoothing)
