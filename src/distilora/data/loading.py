"""DataConfig -> DataSplits: read files, check every cell, map labels, split, subsample and re-balance.

Every check names the file, the 1-based data row (header not counted) and the column, so that a user can fix
the data or the config from the message alone.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from distilora.config import DataConfig, DistillConfig
from distilora.data.aux_scores import aux_names_from_cells, parse_aux_cells
from distilora.data.dataset import DataSplits, TextSplit
from distilora.data.label_cells import LabelMode, build_label_space, encode_labels, label_mode, mode_for_space
from distilora.data.labels import LabelSpace
from distilora.data.readers import is_missing_cell, read_table, require_column
from distilora.data.sampling import balance_indices, stratified_split, stratified_subsample
from distilora.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas

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
        require_column(table, aux_column, train_path, "distill.aux_column")
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
    if distill is not None and (distill.unlabeled or distill.augment):
        held_out = [part for part in (validation, test) if part is not None]
        from distilora.data.unlabeled import load_unlabeled

        unlabeled = load_unlabeled(distill, cfg, train, held_out)
    return DataSplits(train=train, validation=validation, test=test, label_space=space, aux_names=aux_names,
                      unlabeled=unlabeled, validation_held_out=validation_held_out)


def read_training_file(cfg: DataConfig) -> tuple["pandas.DataFrame", TextSplit, LabelSpace]:
    """The whole of data.train, before any split: its table, its labelled texts and the label space it implies."""
    train_path = cfg.train or bundled_demo_path("train")
    table = _read_rows(train_path, cfg, "data.train")
    mode = label_mode(cfg, table, train_path)
    space = build_label_space(cfg, table, mode, train_path)
    full = _to_split("train", train_path, table, cfg, space, mode, require_labels=True)
    _check_two_classes(full, space, cfg)
    return table, full, space


def load_eval_split(cfg: DataConfig, path: str, label_space: LabelSpace, name: str | None = None,
                    require_labels: bool = True) -> TextSplit:
    """An extra labelled file read with the training column mapping, labels mapped into ``label_space``."""
    table = _read_rows(path, cfg, "--data")
    mode: LabelMode = mode_for_space(cfg, label_space)
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
    require_column(table, cfg.text_column, source, "data.text_column")
    texts = checked_texts(table[cfg.text_column].tolist(), source, cfg.text_column, first_row)
    if not cfg.text_pair_column:
        return texts, None
    require_column(table, cfg.text_pair_column, source, "data.text_pair_column")
    return texts, checked_texts(table[cfg.text_pair_column].tolist(), source, cfg.text_pair_column, first_row)


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
        require_column(table, missing, source, "data.label_column")
    labels = encode_labels(table, cfg, space, mode, source) if has_labels else None
    return TextSplit(name=name, source=source, texts=texts, pairs=pairs, labels=labels,
                     rows=np.arange(1, len(texts) + 1, dtype=np.int64))


def _load_labelled(path: str, name: str, cfg: DataConfig, space: LabelSpace, field: str,
                   aux_column: str | None, aux_names: list[str] | None) -> TextSplit:
    table = _read_rows(path, cfg, field)
    split = _to_split(name, path, table, cfg, space, mode_for_space(cfg, space), require_labels=True)
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
    require_column(table, key, train_path, "distill.aux_key")
    require_column(scores, key, distill.aux_file, "distill.aux_key")
    require_column(scores, column, distill.aux_file, "distill.aux_column")
    cells: dict[str, Any] = {}
    for row, (value, cell) in enumerate(zip(scores[key].tolist(), scores[column].tolist()), start=1):
        if value in cells and cells[value] != cell:
            raise DataError(f"{distill.aux_file}: row {row}, column {key!r}: key {str(value)[:40]!r} appears again "
                            f"with other scores; keep one row per key")
        cells[value] = cell
    joined = table.copy()
    joined[column] = [cells.get(value, "") for value in table[key].tolist()]
    return joined
