"""Predict a whole file in constant memory: stream its rows in chunks, keep every input column (ids!) and add the
prediction as `pred_label` and `score_<label>` columns, named so nobody takes them for gold labels.

Output: .csv, .jsonl or .parquet (written to a temporary file and moved into place at the end), or '-' for JSON
lines on standard output, for use in a shell pipeline.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from distilora.config import DataConfig
from distilora.errors import DataError
from distilora.inference.classifier import Classifier
from distilora.runfolder import default_file_mode

OUTPUT_FORMATS = (".csv", ".jsonl", ".parquet")
PRED_COLUMN = "pred_label"


def prediction_columns(labels: list[str]) -> list[str]:
    return [PRED_COLUMN, *(f"score_{name}" for name in labels)]


def predict_file(classifier: Classifier, input_path: str, output_path: str, data: DataConfig, *,
                 batch_size: int = 64, chunk: int = 4096, progress: bool = True) -> int:
    """Write one output row per input row (same order); returns the row count."""
    from distilora.data.loading import texts_and_pairs
    from distilora.data.streaming import iter_chunks, stream_size
    from distilora.progress import progress_bar

    if output_path != "-" and Path(output_path).suffix.lower() not in OUTPUT_FORMATS:
        raise DataError(f"{output_path}: output must end in .csv, .jsonl or .parquet, or be - for standard output")
    fmt, chunks = iter_chunks(input_path, data, chunk)
    added = prediction_columns(classifier.labels)
    rows = 0
    with _Sink(output_path) as sink, progress_bar(stream_size(Path(input_path), fmt), desc="predict",
                                                  unit="row" if fmt == "parquet" else "B", enabled=progress) as bar:
        bar.unit_scale = fmt != "parquet"
        for table, done in chunks:
            clash = [c for c in added if c in table.columns]
            if clash:
                raise DataError(f"{input_path}: already has column {clash[0]!r}; rename it, so predictions cannot "
                                f"be mixed up with it")
            texts, pairs = texts_and_pairs(table, data, input_path, first_row=rows + 1)
            predictions = classifier.to_predictions(classifier.predict_proba(texts, pairs, batch_size))
            table[PRED_COLUMN] = [p.label for p in predictions]
            for name in classifier.labels:
                table[f"score_{name}"] = [p.scores[name] for p in predictions]
            sink.write(table)
            rows += len(table)
            bar.update(done - bar.n)
            bar.set_postfix(texts=rows, refresh=False)
    return rows


class _Sink:
    """Rows out, in the output's format; a file appears only once complete (a killed run leaves no half file)."""

    def __init__(self, output_path: str):
        self.path = None if output_path == "-" else Path(output_path)
        self.kind = "jsonl" if self.path is None else self.path.suffix.lower().lstrip(".")
        self.handle: IO[str] | None = None
        self.tmp: str | None = None
        self.parquet: Any = None
        self.csv: Any = None

    def __enter__(self) -> "_Sink":
        if self.path is None:
            self.handle = sys.stdout
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        if self.kind != "parquet":
            self.handle = open(self.tmp, "w", encoding="utf-8", newline="")
        return self

    def write(self, table: "Any") -> None:
        if self.kind == "parquet":
            self._write_parquet(table)
        elif self.kind == "csv":
            if self.csv is None:
                self.csv = csv.DictWriter(self.handle, fieldnames=list(table.columns), extrasaction="ignore")
                self.csv.writeheader()
            for row in table.to_dict(orient="records"):
                label = row["pred_label"]
                self.csv.writerow({**row, "pred_label": ";".join(label) if isinstance(label, list) else label})
        else:
            for row in table.to_dict(orient="records"):
                self.handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def _write_parquet(self, table: "Any") -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.parquet is None:
            arrow = pa.Table.from_pandas(table, preserve_index=False)
            self.parquet = pq.ParquetWriter(self.tmp, arrow.schema)
        else:
            try:
                arrow = pa.Table.from_pandas(table, schema=self.parquet.schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as err:
                raise DataError(f"the input's columns change type between chunks ({err}); write .jsonl or .csv "
                                f"instead") from None
        self.parquet.write_table(arrow)

    def __exit__(self, kind, error, trace) -> None:
        if self.path is None:
            sys.stdout.flush()
            return
        if self.parquet is not None:
            self.parquet.close()
        if self.handle is not None:
            self.handle.close()
        if error is None:
            os.chmod(self.tmp, default_file_mode())
            os.replace(self.tmp, self.path)
        else:
            Path(self.tmp).unlink(missing_ok=True)
