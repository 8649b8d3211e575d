"""Raw tables: any supported data source -> a pandas DataFrame of cells, with one-line errors.

Cells are kept as they are stored: CSV/TSV cells are always strings ("NA" stays text, a truly empty cell is ""),
JSONL and Parquet keep their JSON / Arrow types so that a number where text belongs can be reported as such.
"""
from __future__ import annotations

import difflib

import csv
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilora.config import DataConfig
from distilora.errors import DataError

if TYPE_CHECKING:
    import pandas

_FORMAT_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
                     ".parquet": "parquet", ".pq": "parquet"}


def is_missing_cell(value: Any) -> bool:
    """An absent cell as pandas hands it over: None, or NaN in a numeric or object column."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def detect_format(path: str, cfg: DataConfig) -> str:
    """cfg.format, or the format implied by an existing path: a folder is a `datasets` folder."""
    if cfg.format != "auto":
        return cfg.format
    location = Path(path).expanduser()
    if location.is_dir():
        return "datasets"
    suffix = location.suffix.lower()
    if suffix in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffix]
    supported = ", ".join(sorted(_FORMAT_BY_SUFFIX))
    raise DataError(f"{path}: cannot tell the file format from the name; use one of {supported}, "
                    f"or set data.format")


def looks_like_hub_id(path: str) -> bool:
    """'imdb' or 'owner/name': no file extension, no path markers, and 'owner' is not a local folder."""
    owner = path.partition("/")[0] if "/" in path else None
    return (path.count("/") <= 1 and not path.startswith((".", "/", "~")) and "\\" not in path
            and Path(path).suffix == "" and not (owner and Path(owner).is_dir()))


def read_table(path: str, cfg: DataConfig, *, field: str = "data") -> "pandas.DataFrame":
    """Read one data source into a DataFrame; ``field`` (e.g. 'data.train') names the config key in errors."""
    location = Path(path).expanduser()
    is_hub = cfg.format == "hub" or (cfg.format == "auto" and not location.exists() and looks_like_hub_id(path))
    if is_hub:
        return _read_hub(path, cfg)
    if not location.exists():
        raise DataError(f"{field}: {path} not found (relative paths start at {Path.cwd()}); fix the path")
    fmt = detect_format(path, cfg)
    if fmt == "datasets":
        return _read_datasets_folder(location, cfg)
    if location.is_dir():
        raise DataError(f"{field}: {path} is a folder, but data.format is {fmt!r}; give a file")
    if location.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; give a file with a header row and data rows")
    if fmt in ("csv", "tsv"):
        return _read_delimited(location, cfg, default_delimiter="," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _read_json_records(location, cfg)
    return _read_parquet(location)


def _read_delimited(path: Path, cfg: DataConfig, default_delimiter: str) -> "pandas.DataFrame":
    import pandas as pd

    names = cfg.column_names
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, sep=cfg.delimiter or default_delimiter, dtype=str, keep_default_na=False,
                                quoting=csv.QUOTE_NONE if cfg.quoting == "none" else csv.QUOTE_MINIMAL,
                                header=0 if cfg.header else None, names=names, index_col=False,
                                encoding=cfg.encoding, engine="c")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not readable as {cfg.encoding} text (byte {err.start}); set data.encoding "
                        f"to the file's encoding, e.g. latin-1 or cp1252") from None
    except LookupError:
        raise DataError(f"data.encoding: unknown encoding {cfg.encoding!r}; use e.g. utf-8 or latin-1") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; give a file with a header row and data rows") from None
    except pd.errors.ParserWarning:
        if names:
            raise DataError(f"{path}: data.column_names lists {len(names)} names but the rows have a different "
                            f"number of fields; give exactly one name per column") from None
        raise DataError(f"{path}: some rows have more fields than the header; check data.delimiter and "
                        f"data.quoting, or quote cells that contain the delimiter") from None
    except pd.errors.ParserError as err:
        detail = str(err).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise DataError(f"{path}: cannot split rows into columns ({detail}); check data.delimiter, data.quoting "
                        f"and data.header") from None
    table.columns = [str(column) for column in table.columns]
    return table


def _read_json_records(path: Path, cfg: DataConfig) -> "pandas.DataFrame":
    """JSON lines (one object a line) or a single JSON array of objects."""
    import pandas as pd

    try:
        text = path.read_text(encoding=cfg.encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not readable as {cfg.encoding} text (byte {err.start}); set data.encoding "
                        f"to the file's encoding") from None
    except LookupError:
        raise DataError(f"data.encoding: unknown encoding {cfg.encoding!r}; use e.g. utf-8 or latin-1") from None
    stripped = text.lstrip("\ufeff").strip()
    if not stripped:
        raise DataError(f"{path}: the file is empty; give one JSON object per line")
    if stripped.startswith("["):
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        where = [f"item {i + 1}" for i in range(len(records))] if isinstance(records, list) else []
    else:
        records, where = [], []
        for number, line in enumerate(stripped.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number} is not valid JSON ({err.msg}); write one object per line") \
                    from None
            where.append(f"line {number}")
    if not isinstance(records, list):
        raise DataError(f"{path}: expected JSON objects, one per line (or a JSON array of objects)")
    for record, place in zip(records, where):
        if not isinstance(record, dict):
            raise DataError(f"{path}: {place} is a {type(record).__name__}, not an object with named fields")
    table = pd.DataFrame.from_records(records)
    table.columns = [str(column) for column in table.columns]
    return table


def _read_parquet(path: Path) -> "pandas.DataFrame":
    import pandas as pd

    try:
        table = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for a corrupt or non-Parquet file
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    table.columns = [str(column) for column in table.columns]
    return table


def _read_datasets_folder(path: Path, cfg: DataConfig) -> "pandas.DataFrame":
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: not a `datasets` save_to_disk folder (no dataset_info.json / state.json); "
                        f"give a data file or a saved dataset") from None
    if isinstance(loaded, datasets.DatasetDict):
        if cfg.hub_split not in loaded:
            raise DataError(f"{path}: holds splits {list(loaded)}, none named {cfg.hub_split!r}; set data.hub_split "
                            f"to the split to read")
        loaded = loaded[cfg.hub_split]
    return _dataset_to_frame(loaded)


def _read_hub(name: str, cfg: DataConfig) -> "pandas.DataFrame":
    import datasets

    try:
        loaded = datasets.load_dataset(name, split=cfg.hub_split)
    except Exception as err:  # offline, unknown id, unknown split: datasets raises many types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{name}: could not load this hub dataset ({reason}); without network access give a local "
                        f"file instead (CSV, TSV, JSONL, Parquet or a saved `datasets` folder)") from None
    return _dataset_to_frame(loaded)


def _dataset_to_frame(dataset: Any) -> "pandas.DataFrame":
    table = dataset.to_pandas()
    table.columns = [str(column) for column in table.columns]
    return table


def require_column(table: "pandas.DataFrame", column: str, source: str, field: str) -> None:
    """A clear error naming the file, the field and the nearest column when ``column`` is not in ``table``."""
    if column in table.columns:
        return
    existing = [str(c) for c in table.columns]
    by_case = [c for c in existing if c.lower() == column.lower()]
    close = by_case or difflib.get_close_matches(column, existing, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(repr(c) for c in existing[:20]) + (", ..." if len(existing) > 20 else "")
    raise DataError(f"{source}: no column {column!r} (set by {field}); the file has columns {shown}{hint}")
