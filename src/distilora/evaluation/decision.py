"""The decision rule a run ships with: a temperature and thresholds, both fitted on validation only."""
from __future__ import annotations

import numpy as np

from distilora.config import EvalConfig
from distilora.evaluation.calibration import checked_temperature
from distilora.evaluation.metrics import probabilities
from distilora.evaluation.thresholds import tune_thresholds


def fit_decision(task: str, val_logits: np.ndarray, val_labels: np.ndarray,
                 eval_cfg: EvalConfig) -> tuple[float, list[float] | None, dict]:
    """(temperature, thresholds, calibration note): temperature scaling when eval.calibrate and it helps held-out
    validation texts, then thresholds by eval.tune_threshold on the (calibrated) validation probabilities."""
    if eval_cfg.calibrate:
        temperature, note = checked_temperature(task, val_logits, val_labels)
    else:
        temperature, note = 1.0, {"kept": False, "temperature": 1.0, "why": "eval.calibrate is off"}
    probs = probabilities(task, val_logits, temperature)
    return temperature, tune_thresholds(task, probs, val_labels, eval_cfg.tune_threshold, eval_cfg.threshold), note
