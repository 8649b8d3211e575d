"""Write a table back in the format a data file was read with (same delimiter, quoting, header and encoding), so a
cleaned training file or a batch of texts to label drops in where the original was; written atomically.

A `datasets` folder or a hub dataset comes back as Parquet, which every reader (and `datasets`) opens.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from distilora.config import DataConfig
from distilora.data.readers import detect_format, looks_like_hub_id
from distilora.errors import DataError
from distilora.runfolder import atomic_write_file

if TYPE_CHECKING:
    import pandas

SUFFIX = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}


def output_format(source: str, cfg: DataConfig) -> str:
    """The format to write rows read from ``source`` in: its own, or parquet for a datasets folder / hub id."""
    location = Path(source).expanduser()
    if cfg.format == "hub" or (cfg.format == "auto" and not location.exists() and looks_like_hub_id(source)):
        return "parquet"
    fmt = detect_format(source, cfg)
    return fmt if fmt in SUFFIX else "parquet"


def write_like_source(table: "pandas.DataFrame", path: Path, source: str, cfg: DataConfig) -> Path:
    """Write ``table`` to ``path`` (its suffix set to the format's) in the format of ``source``; returns the path."""
    fmt = output_format(source, cfg)
    path = Path(path).with_suffix(SUFFIX[fmt])
    if fmt == "parquet":
        atomic_write_file(path, lambda tmp: table.to_parquet(tmp, index=False))
    elif fmt == "jsonl":
        atomic_write_file(path, lambda tmp: table.to_json(tmp, orient="records", lines=True, force_ascii=False))
    else:
        atomic_write_file(path, lambda tmp: _write_delimited(table, tmp, cfg, "," if fmt == "csv" else "\t", path))
    return path


def _write_delimited(table: "pandas.DataFrame", tmp: Path, cfg: DataConfig, default_delimiter: str,
                     final: Path) -> None:
    delimiter = cfg.delimiter or default_delimiter
    try:
        table.to_csv(tmp, sep=delimiter, index=False, header=cfg.header, encoding=cfg.encoding, lineterminator="\n",
                     quoting=csv.QUOTE_NONE if cfg.quoting == "none" else csv.QUOTE_MINIMAL)
    except csv.Error:
        raise DataError(f"{final}: a cell holds the delimiter or a line break, which the source's unquoted format "
                        f"(data.quoting: none) cannot write; set data.quoting: minimal or use .jsonl") from None
