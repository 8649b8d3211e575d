"""Predict a whole file: read texts with the run's column mapping, predict in chunks, write CSV or JSONL atomically."""
from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from distilora.config import DataConfig
from distilora.errors import DataError
from distilora.inference.classifier import Classifier, Prediction

OUTPUT_FORMATS = (".csv", ".jsonl")


def _row(text: str, prediction: Prediction) -> dict:
    return {"text": text, "label": prediction.label, "scores": prediction.scores}


def predict_file(classifier: Classifier, input_path: str, output_path: str, data: DataConfig, *,
                 batch_size: int = 64, chunk: int = 2048, progress: bool = True) -> int:
    """Write one prediction per input text (same order) to a .csv or .jsonl file; returns the row count."""
    from tqdm.auto import tqdm

    from distilora.data.loading import read_texts

    out = Path(output_path)
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(f"{out}: output must end in .csv or .jsonl")
    split = read_texts(input_path, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle, \
                tqdm(total=len(split), desc="predict", unit="text", disable=not progress) as bar:
            writer = None
            if out.suffix.lower() == ".csv":
                writer = csv.writer(handle)
                writer.writerow(["text", "label", *[f"score_{name}" for name in classifier.labels]])
            for start in range(0, len(split), chunk):
                texts = split.texts[start:start + chunk]
                pairs = None if split.pairs is None else split.pairs[start:start + chunk]
                predictions = classifier.to_predictions(classifier.predict_proba(texts, pairs, batch_size))
                for text, prediction in zip(texts, predictions):
                    if writer is not None:
                        label = ";".join(prediction.label) if isinstance(prediction.label, list) else prediction.label
                        writer.writerow([text, label, *prediction.scores.values()])
                    else:
                        handle.write(json.dumps(_row(text, prediction), ensure_ascii=False) + "\n")
                bar.update(len(texts))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(split)
