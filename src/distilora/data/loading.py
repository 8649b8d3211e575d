"""DataConfig -> DataSplits: read files, check every cell, map labels, split, subsample and re-balance.

Every check names the file, the 1-based data row (header not counted) and the column, so that a user can fix
the data or the config from the message alone.
"""
from __future__ import annotations

import difflib
import json
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from distilora.config import DataConfig, DistillConfig
from distilora.data.aux_scores import aux_names_from_cells, parse_aux_cells
from distilora.data.dataset import DataSplits, TextSplit
from distilora.data.labels import LabelSpace, warn_joined_labels
from distilora.data.readers import is_missing_cell, read_table
from distilora.data.sampling import balance_indices, stratified_split, stratified_subsample
from distilora.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas

LabelMode = Literal["single", "multi", "columns"]


def bundled_demo_path(split: Literal["train", "test"]) -> str:
    """The bundled review-sentiment set used when data.train is empty."""
    return str(files("distilora") / "resources" / f"demo_{split}.csv")


def load_splits(cfg: DataConfig, distill: DistillConfig | None = None) -> DataSplits:
    """Read train (and validation/test files or seeded stratified splits of train), build the label space,
    then subsample and re-balance the training split only."""
    train_path = cfg.train or bundled_demo_path("train")
    test_path = cfg.test or (bundled_demo_path("test") if cfg.train is None else None)
    aux_column = distill.aux_column if distill else None
    table, full, space = read_training_file(cfg)
    aux_names = None
    if aux_column:
        if distill.aux_file:
            table = _join_aux_file(table, train_path, cfg, distill)
        _require_column(table, aux_column, train_path, "distill.aux_column")
        aux_names = distill.aux_names or aux_names_from_cells(table[aux_column].tolist(), train_path, aux_column)
        full.aux = parse_aux_cells(table[aux_column].tolist(), aux_names, train_path, aux_column)

    strata = label_strata(full.labels)
    fractions = [0.0 if cfg.validation else cfg.validation_fraction, 0.0 if test_path else cfg.test_fraction]
    rest, held_val, held_test = stratified_split(strata, fractions, cfg.seed)
    train = full.subset(rest)
    validation_held_out = cfg.validation is not None or cfg.validation_fraction > 0
    if cfg.validation:
        validation = _load_labelled(cfg.validation, "validation", cfg, space, "data.validation", aux_column, aux_names)
    else:
        validation = full.subset(held_val, name="validation")
    if test_path:
        test = _load_labelled(test_path, "test", cfg, space, "data.test", aux_column, aux_names)
    else:
        test = full.subset(held_test, name="test") if cfg.test_fraction > 0 else None
    checked = ((validation if validation_held_out else None, "data.validation_fraction"), (test, "data.test_fraction"))
    for part, field in checked:
        if part is not None and len(part) == 0:
            raise DataError(f"{train_path}: {len(full)} rows are too few to hold out a {part.name} split "
                            f"({field}); give a larger file or a separate {part.name} file")

    if cfg.train_size is not None and cfg.train_size < len(train):
        train = train.subset(stratified_subsample(label_strata(train.labels), cfg.train_size, cfg.seed))
    if test is not None and cfg.test_size is not None and cfg.test_size < len(test):
        test = test.subset(stratified_subsample(label_strata(test.labels), cfg.test_size, cfg.seed))
    if not validation_held_out:  # tiny data, nothing to spare: the run is judged on its own training texts
        validation = train.subset(np.arange(len(train)), name="validation")
    if cfg.balance != "none":
        if space.is_multilabel:
            raise ConfigError("data.balance: re-balancing is for single-label tasks; for multi-label data use "
                              "train.class_weights: auto or train.loss: focal")
        train = train.subset(balance_indices(train.labels, cfg.balance, cfg.seed))
    unlabeled = None
    if distill is not None and distill.unlabeled:
        held_out = [part for part in (validation, test) if part is not None]
        from distilora.data.unlabeled import load_unlabeled

        unlabeled = load_unlabeled(distill, cfg, held_out)
    return DataSplits(train=train, validation=validation, test=test, label_space=space, aux_names=aux_names,
                      unlabeled=unlabeled, validation_held_out=validation_held_out)


def read_training_file(cfg: DataConfig) -> tuple["pandas.DataFrame", TextSplit, LabelSpace]:
    """The whole of data.train, before any split: its table, its labelled texts and the label space it implies."""
    train_path = cfg.train or bundled_demo_path("train")
    table = _read_rows(train_path, cfg, "data.train")
    mode = _label_mode(cfg, table, train_path)
    space = _build_label_space(cfg, table, mode, train_path)
    full = _to_split("train", train_path, table, cfg, space, mode, require_labels=True)
    _check_two_classes(full, space, cfg)
    return table, full, space


def load_eval_split(cfg: DataConfig, path: str, label_space: LabelSpace, name: str | None = None,
                    require_labels: bool = True) -> TextSplit:
    """An extra labelled file read with the training column mapping, labels mapped into ``label_space``."""
    table = _read_rows(path, cfg, "--data")
    mode: LabelMode = _mode_for_space(cfg, label_space)
    return _to_split(name or Path(path).stem, path, table, cfg, label_space, mode, require_labels)


def read_texts(path: str, cfg: DataConfig, field: str = "--input") -> TextSplit:
    """Unlabelled texts to predict: the text (and pair) column of a table, or a .txt file with one text a line."""
    if cfg.format == "auto" and Path(path).suffix.lower() == ".txt":
        return _read_text_lines(path, cfg, field)
    texts, pairs = texts_and_pairs(_read_rows(path, cfg, field), cfg, path)
    return TextSplit(name=Path(path).stem, source=path, texts=texts, pairs=pairs, labels=None,
                     rows=np.arange(1, len(texts) + 1, dtype=np.int64))


def label_strata(labels: np.ndarray) -> np.ndarray:
    """One stratum per row: the class for single-label data; for multi-label data the row's rarest positive label
    (-1 for rows with none), so that rare labels are spread over every split."""
    if labels.ndim == 1:
        return labels
    positives = labels > 0
    frequency = positives.sum(axis=0).astype(np.float64)
    rarest = np.argmin(np.where(positives, frequency, np.inf), axis=1)
    return np.where(positives.any(axis=1), rarest, -1)


# ---------------------------------------------------------------------------------------------- reading + cells

def _read_rows(path: str, cfg: DataConfig, field: str) -> "pandas.DataFrame":
    table = read_table(path, cfg, field=field)
    if len(table) == 0:
        raise DataError(f"{path}: has a header but no data rows; give a file with at least one row")
    return table


def _read_text_lines(path: str, cfg: DataConfig, field: str) -> TextSplit:
    location = Path(path)
    if not location.is_file():
        raise DataError(f"{field}: {path} not found (relative paths start at {Path.cwd()}); fix the path")
    try:
        lines = location.read_text(encoding=cfg.encoding).split("\n")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not readable as {cfg.encoding} text (byte {err.start}); set data.encoding "
                        f"to the file's encoding") from None
    rows = [number for number, line in enumerate(lines, start=1) if line.strip()]
    if not rows:
        raise DataError(f"{path}: the file is empty; write one text per line")
    return TextSplit(name=location.stem, source=path, texts=[lines[r - 1] for r in rows], pairs=None, labels=None,
                     rows=np.array(rows, dtype=np.int64))


def _require_column(table: "pandas.DataFrame", column: str, source: str, field: str) -> None:
    if column in table.columns:
        return
    existing = [str(c) for c in table.columns]
    by_case = [c for c in existing if c.lower() == column.lower()]
    close = by_case or difflib.get_close_matches(column, existing, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(repr(c) for c in existing[:20]) + (", ..." if len(existing) > 20 else "")
    raise DataError(f"{source}: no column {column!r} (set by {field}); the file has columns {shown}{hint}")


def checked_texts(values: list[Any], source: str, column: str, first_row: int = 1) -> list[str]:
    """The cells of a text column, or a DataError at the first empty or non-text cell (rows numbered from
    ``first_row``, so a chunk of a streamed file names the row of the whole file)."""
    bad = [i for i, value in enumerate(values) if not (isinstance(value, str) and value.strip())]
    if not bad:
        return values
    first, value = bad[0], values[bad[0]]
    more = f" ({len(bad) - 1} more rows like it)" if len(bad) > 1 else ""
    where = f"{source}: row {first + first_row}, column {column!r}"
    if is_missing_cell(value) or isinstance(value, str):
        raise DataError(f"{where}: the text is empty{more}; drop the row or fill it in")
    raise DataError(f"{where}: expected text, found {type(value).__name__} {value!r}{more}; "
                    f"check data.text_column points at the text")


def texts_and_pairs(table: "pandas.DataFrame", cfg: DataConfig, source: str,
                    first_row: int = 1) -> tuple[list[str], list[str] | None]:
    """The text (and second-text) cells of a table with the run's column mapping, checked."""
    _require_column(table, cfg.text_column, source, "data.text_column")
    texts = checked_texts(table[cfg.text_column].tolist(), source, cfg.text_column, first_row)
    if not cfg.text_pair_column:
        return texts, None
    _require_column(table, cfg.text_pair_column, source, "data.text_pair_column")
    return texts, checked_texts(table[cfg.text_pair_column].tolist(), source, cfg.text_pair_column, first_row)


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


# ------------------------------------------------------------------------------------------------------ labels

def _label_mode(cfg: DataConfig, table: "pandas.DataFrame", source: str) -> LabelMode:
    """How labels are stored: 0/1 columns, several labels a cell, or one label a cell."""
    if isinstance(cfg.label_column, list):
        for column in cfg.label_column:
            _require_column(table, column, source, "data.label_column")
        mode: LabelMode = "columns"
    elif cfg.label_separator or cfg.task == "multilabel":
        _require_column(table, cfg.label_column, source, "data.label_column")
        mode = "multi"
    else:
        _require_column(table, cfg.label_column, source, "data.label_column")
        first = next((v for v in table[cfg.label_column].tolist() if not is_missing_cell(v) and str(v).strip()), None)
        is_list = isinstance(first, (list, tuple, np.ndarray)) or (isinstance(first, str) and first.strip()[:1] == "[")
        mode = "multi" if is_list else "single"
    if mode != "single" and cfg.task in ("binary", "multiclass"):
        raise ConfigError(f"data.task is {cfg.task!r} but the labels are multi-label (a list of label columns, "
                          f"data.label_separator or list cells); set data.task: multilabel or auto")
    return mode


def _mode_for_space(cfg: DataConfig, space: LabelSpace) -> LabelMode:
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


def _build_label_space(cfg: DataConfig, table: "pandas.DataFrame", mode: LabelMode, source: str) -> LabelSpace:
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
        _require_column(table, column, source, "data.label_column")
        for row, value in enumerate(table[column].tolist(), start=1):
            name = _cell_name(value)
            if name not in ("0", "1"):
                raise DataError(f"{source}: row {row}, column {column!r}: expected 0 or 1 in a multi-label column, "
                                f"found {value!r}; label columns listed in data.label_column must hold 0/1")
            multi_hot[row - 1, k] = float(name)
    return multi_hot


def _check_two_classes(split: TextSplit, space: LabelSpace, cfg: DataConfig) -> None:
    if space.is_multilabel:
        if not split.labels.any():
            raise DataError(f"{split.source}: no training row has any label set; check data.label_column and "
                            f"data.label_separator")
        return
    present = np.unique(split.labels)
    if len(present) < 2:
        only = space.names[int(present[0])]
        raise DataError(f"{split.source}: every training row has label {only!r} (column {cfg.label_column!r}); "
                        f"a classifier needs examples of at least two classes, so add rows of the other classes")


# ------------------------------------------------------------------------------------------------------ splits

def _to_split(name: str, source: str, table: "pandas.DataFrame", cfg: DataConfig, space: LabelSpace,
              mode: LabelMode, require_labels: bool) -> TextSplit:
    texts, pairs = texts_and_pairs(table, cfg, source)
    label_columns = cfg.label_column if isinstance(cfg.label_column, list) else [cfg.label_column]
    has_labels = all(column in table.columns for column in label_columns)
    if not has_labels and require_labels:
        missing = next(column for column in label_columns if column not in table.columns)
        _require_column(table, missing, source, "data.label_column")
    labels = encode_labels(table, cfg, space, mode, source) if has_labels else None
    return TextSplit(name=name, source=source, texts=texts, pairs=pairs, labels=labels,
                     rows=np.arange(1, len(texts) + 1, dtype=np.int64))


def _load_labelled(path: str, name: str, cfg: DataConfig, space: LabelSpace, field: str,
                   aux_column: str | None, aux_names: list[str] | None) -> TextSplit:
    table = _read_rows(path, cfg, field)
    split = _to_split(name, path, table, cfg, space, _mode_for_space(cfg, space), require_labels=True)
    if aux_column and aux_names:
        if aux_column in table.columns:
            split.aux = parse_aux_cells(table[aux_column].tolist(), aux_names, path, aux_column)
        else:
            split.aux = np.full((len(split), len(aux_names)), np.nan, dtype=np.float32)
    return split


def _join_aux_file(table: "pandas.DataFrame", train_path: str, cfg: DataConfig,
                   distill: DistillConfig) -> "pandas.DataFrame":
    """The training table with aux_column filled from aux_file, row by row on aux_key (empty where unmatched)."""
    if not distill.aux_key:
        raise ConfigError("distill.aux_file needs distill.aux_key: the column that pairs its rows with training rows")
    scores = _read_rows(distill.aux_file, cfg, "distill.aux_file")
    key, column = distill.aux_key, distill.aux_column
    _require_column(table, key, train_path, "distill.aux_key")
    _require_column(scores, key, distill.aux_file, "distill.aux_key")
    _require_column(scores, column, distill.aux_file, "distill.aux_column")
    cells: dict[str, Any] = {}
    for row, (value, cell) in enumerate(zip(scores[key].tolist(), scores[column].tolist()), start=1):
        if value in cells and cells[value] != cell:
            raise DataError(f"{distill.aux_file}: row {row}, column {key!r}: key {str(value)[:40]!r} appears again "
                            f"with other scores; keep one row per key")
        cells[value] = cell
    joined = table.copy()
    joined[column] = [cells.get(value, "") for value in table[key].tolist()]
    return joined
