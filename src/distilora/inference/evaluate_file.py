"""`distilora eval`: a finished run scored on another labelled file, downstream of training.

The file is read with the run's own column mapping (changed by data.* overrides), scored by the run's classifier
with its stored temperature and thresholds, and the metrics and predictions are saved in the run under
eval-<file stem>, beside (never over) the run's own splits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from distilora.runfolder import RunFolder, eval_name


def evaluate_run(run_dir: str | Path, data_file: str, *, batch_size: int = 64,
                 data_overrides: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Metrics of a finished run on another labelled file, saved in the run as metrics/eval-<file stem>.json, apart
    from the run's own splits. The file is read with the training column mapping, changed by data_overrides
    ('data.text_column=body', 'data.label_column=toxic'): a held-out file need not be rewritten to match."""
    from distilora.config import file_data_config
    from distilora.data.loading import load_eval_split
    from distilora.data.labels import LabelSpace
    from distilora.evaluation.metrics import evaluate_logits
    from distilora.evaluation.uncertainty import with_intervals
    from distilora.inference.classifier import Classifier

    folder = RunFolder(run_dir)
    info = folder.info()
    data = file_data_config(folder.config_yaml, data_overrides)
    name = eval_name(data_file)
    split = load_eval_split(data, data_file, LabelSpace(tuple(info.labels), info.task), name=name)
    logits = Classifier.load(folder.path).predict_logits(split.texts, split.pairs, batch_size=batch_size,
                                                         progress=f"evaluate {name}" if progress else None)
    metrics = with_intervals(evaluate_logits(info.task, logits, split.labels, info.labels, info.temperature,
                                             info.thresholds), logits, split.labels)
    folder.write_metrics(name, metrics)
    folder.write_predictions(name, split.rows, split.texts, split.pairs, split.labels, logits)
    return metrics


