"""Label cells -> a LabelSpace and encoded arrays: one class name a cell, several (separated or JSON lists), 0/1
columns, or indices into data.labels. Every error names the file, the 1-based row and the column."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from distilora.config import DataConfig
from distilora.data.labels import LabelSpace, warn_joined_labels
from distilora.data.readers import is_missing_cell, require_column
from distilora.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas

LabelMode = Literal["single", "multi", "columns"]


def _cell_name(value: Any) -> str | None:
    """A label cell as a class name: numbers as their integer spelling, booleans as 0/1; None when empty."""
    if is_missing_cell(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(float(value))
    text = str(value).strip()
    return text or None


def _cell_names(value: Any, separator: str | None, source: str, row: int, column: str) -> list[str]:
    """A multi-label cell: a list, a JSON list, separated names, or one name."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
    elif is_missing_cell(value) or not str(value).strip():
        return []
    elif isinstance(value, str) and value.strip().startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{source}: row {row}, column {column!r}: {value!r} is not a valid JSON list of "
                            f"labels") from None
    elif separator:
        items = str(value).split(separator)
    else:
        items = [value]
    names = [_cell_name(item) for item in items]
    return [name for name in names if name is not None]


def label_mode(cfg: DataConfig, table: "pandas.DataFrame", source: str) -> LabelMode:
    """How labels are stored: 0/1 columns, several labels a cell, or one label a cell."""
    if isinstance(cfg.label_column, list):
        for column in cfg.label_column:
            require_column(table, column, source, "data.label_column")
        mode: LabelMode = "columns"
    elif cfg.label_separator or cfg.task == "multilabel":
        require_column(table, cfg.label_column, source, "data.label_column")
        mode = "multi"
    else:
        require_column(table, cfg.label_column, source, "data.label_column")
        first = next((v for v in table[cfg.label_column].tolist() if not is_missing_cell(v) and str(v).strip()), None)
        is_list = isinstance(first, (list, tuple, np.ndarray)) or (isinstance(first, str) and first.strip()[:1] == "[")
        mode = "multi" if is_list else "single"
    if mode != "single" and cfg.task in ("binary", "multiclass"):
        raise ConfigError(f"data.task is {cfg.task!r} but the labels are multi-label (a list of label columns, "
                          f"data.label_separator or list cells); set data.task: multilabel or auto")
    return mode


def mode_for_space(cfg: DataConfig, space: LabelSpace) -> LabelMode:
    if isinstance(cfg.label_column, list):
        return "columns"
    return "multi" if space.is_multilabel else "single"


def _configured_names(cfg: DataConfig) -> list[str] | None:
    if cfg.labels is None or isinstance(cfg.labels, list):
        return cfg.labels
    path = Path(cfg.labels)
    if not path.is_file():
        raise ConfigError(f"data.labels: {cfg.labels} not found (relative to {Path.cwd()}); give a list of class "
                          f"names or a file with one name per line")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ConfigError(f"data.labels: {cfg.labels} is empty; write one class name per line")
    return names


def _sorted_names(names: set[str]) -> list[str]:
    """Numeric-looking names in numeric order ("2" before "10"), others alphabetically."""
    try:
        return sorted(names, key=float)
    except ValueError:
        return sorted(names)


def build_label_space(cfg: DataConfig, table: "pandas.DataFrame", mode: LabelMode, source: str) -> LabelSpace:
    configured = _configured_names(cfg)
    if mode == "columns":
        columns = list(cfg.label_column)
        if configured is not None and configured != columns:
            raise ConfigError(f"data.labels {configured} differs from the label columns {columns}; with 0/1 label "
                              f"columns the column names are the labels, so leave data.labels empty")
        return LabelSpace(tuple(columns), "multilabel")
    if cfg.label_encoding == "index" and configured is None:
        raise ConfigError("data.label_encoding is 'index' but data.labels is empty; give the class names (or a "
                          "file with one per line) that the indices point into")
    if configured is not None:
        names = configured
    else:
        column = str(cfg.label_column)
        seen: dict[str, int] = {}
        for row, value in enumerate(table[column].tolist(), start=1):
            for name in (_cell_names(value, cfg.label_separator, source, row, column) if mode == "multi"
                         else [name for name in [_cell_name(value)] if name is not None]):
                seen.setdefault(name, row)
        warn_joined_labels(seen, cfg.label_separator, source, column)
        names = _sorted_names(set(seen))
    if mode == "multi":
        task = "multilabel"
    elif cfg.task != "auto":
        task = cfg.task
    elif len(names) < 2:
        raise DataError(f"{source}: column {cfg.label_column!r} holds a single class {names}; a classifier needs at "
                        f"least two classes (check data.label_column, or list them in data.labels)")
    else:
        task = "binary" if len(names) == 2 else "multiclass"
    return LabelSpace(tuple(names), task)


def _index_name(name: str, space: LabelSpace, source: str, row: int, column: str) -> str:
    """Turn an index cell (label_encoding: index) into its class name."""
    try:
        index = int(name)
    except ValueError:
        raise DataError(f"{source}: row {row}, column {column!r}: {name!r} is not a class index; with "
                        f"data.label_encoding 'index' cells hold 0-based indices into data.labels") from None
    if not 0 <= index < space.num_labels:
        raise DataError(f"{source}: row {row}, column {column!r}: index {index} is out of range for "
                        f"{space.num_labels} labels (0..{space.num_labels - 1}); check data.labels")
    return space.names[index]


def _unknown_label(name: str, space: LabelSpace, source: str, row: int, column: str) -> DataError:
    return DataError(f"{source}: row {row}, column {column!r}: label {name!r} is not one of the training labels "
                     f"{list(space.names)}; fix the row, or add the label to the training data / data.labels")


def encode_labels(table: "pandas.DataFrame", cfg: DataConfig, space: LabelSpace, mode: LabelMode,
                  source: str) -> np.ndarray:
    """Label cells -> int64 class indices (single-label) or float32 0/1 [n, k] (multi-label)."""
    index_of = space.label2id()
    if mode == "columns":
        return _encode_label_columns(table, list(cfg.label_column), source)
    column = str(cfg.label_column)
    cells = table[column].tolist()
    if mode == "single":
        out = np.empty(len(cells), dtype=np.int64)
        for row, value in enumerate(cells, start=1):
            name = _cell_name(value)
            if name is None:
                raise DataError(f"{source}: row {row}, column {column!r}: the label is empty; every row needs a "
                                f"label (drop the row or fill it in)")
            if cfg.label_encoding == "index":
                name = _index_name(name, space, source, row, column)
            if name not in index_of:
                raise _unknown_label(name, space, source, row, column)
            out[row - 1] = index_of[name]
        return out
    multi_hot = np.zeros((len(cells), space.num_labels), dtype=np.float32)
    for row, value in enumerate(cells, start=1):
        for name in _cell_names(value, cfg.label_separator, source, row, column):
            if cfg.label_encoding == "index":
                name = _index_name(name, space, source, row, column)
            if name not in index_of:
                raise _unknown_label(name, space, source, row, column)
            multi_hot[row - 1, index_of[name]] = 1.0
    return multi_hot


def _encode_label_columns(table: "pandas.DataFrame", columns: list[str], source: str) -> np.ndarray:
    multi_hot = np.zeros((len(table), len(columns)), dtype=np.float32)
    for k, column in enumerate(columns):
        require_column(table, column, source, "data.label_column")
        for row, value in enumerate(table[column].tolist(), start=1):
            name = _cell_name(value)
            if name not in ("0", "1"):
                raise DataError(f"{source}: row {row}, column {column!r}: expected 0 or 1 in a multi-label column, "
                                f"found {value!r}; label columns listed in data.label_column must hold 0/1")
            multi_hot[row - 1, k] = float(name)
    return multi_hot
