"""Tables read in chunks of rows, for files too large to hold in memory (batch prediction of millions of texts).

Same cell rules as readers.py (CSV cells are strings, JSONL and Parquet keep their types) and the same DataConfig
options; each chunk comes with how far through the file it is, for a progress bar with an ETA.
"""
from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from distilora.config import DataConfig
from distilora.data.readers import detect_format
from distilora.errors import DataError

if TYPE_CHECKING:
    import pandas

Chunk = tuple["pandas.DataFrame", int]  # rows, and progress so far (bytes read, or rows for Parquet)


def stream_size(path: Path, fmt: str) -> int:
    """The progress total that matches the chunks: bytes for text formats, rows for Parquet."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return path.stat().st_size


def iter_chunks(path: str, cfg: DataConfig, rows: int, field: str = "--input") -> tuple[str, Iterator[Chunk]]:
    """(format, chunks) of a CSV/TSV/JSONL/Parquet file or a .txt file with one text a line."""
    location = Path(path).expanduser()
    if not location.is_file():
        raise DataError(f"{field}: {path} not found (relative paths start at {Path.cwd()}); fix the path")
    fmt = "txt" if cfg.format == "auto" and location.suffix.lower() == ".txt" else detect_format(path, cfg)
    readers = {"csv": _csv_chunks, "tsv": _csv_chunks, "jsonl": _jsonl_chunks, "parquet": _parquet_chunks,
               "txt": _txt_chunks}
    if fmt not in readers:
        raise DataError(f"{field}: {path} is {fmt!r}; stream prediction reads CSV, TSV, JSONL, Parquet or .txt files")
    return fmt, readers[fmt](location, cfg, rows, fmt)


def _csv_chunks(path: Path, cfg: DataConfig, rows: int, fmt: str) -> Iterator[Chunk]:
    import pandas as pd

    with path.open("rb") as handle:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                reader = pd.read_csv(handle, sep=cfg.delimiter or ("," if fmt == "csv" else "\t"), dtype=str,
                                     keep_default_na=False, header=0 if cfg.header else None, names=cfg.column_names,
                                     quoting=csv.QUOTE_NONE if cfg.quoting == "none" else csv.QUOTE_MINIMAL,
                                     index_col=False, encoding=cfg.encoding, chunksize=rows)
                for chunk in reader:
                    chunk.columns = [str(c) for c in chunk.columns]
                    yield chunk, handle.tell()
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not readable as {cfg.encoding} text (byte {err.start}); set data.encoding") \
                from None
        except (pd.errors.ParserError, pd.errors.ParserWarning) as err:
            detail = str(err).strip().splitlines()[-1]
            raise DataError(f"{path}: cannot split rows into columns ({detail}); check data.delimiter, data.quoting "
                            f"and data.header") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty; give a file with a header row and data rows") from None


def _jsonl_chunks(path: Path, cfg: DataConfig, rows: int, fmt: str) -> Iterator[Chunk]:
    import pandas as pd

    records: list[dict] = []
    done = 0
    with path.open("r", encoding=cfg.encoding) as handle:
        for number, line in enumerate(handle, start=1):
            done += len(line.encode(cfg.encoding, errors="replace"))
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number} is not valid JSON ({err.msg}); write one object per line") \
                    from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {number} is a {type(record).__name__}, not an object with named fields")
            records.append(record)
            if len(records) == rows:
                yield pd.DataFrame.from_records(records), done
                records = []
    if records:
        yield pd.DataFrame.from_records(records), done


def _parquet_chunks(path: Path, cfg: DataConfig, rows: int, fmt: str) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises many types for a corrupt or non-Parquet file
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]})") from None
    done = 0
    for batch in source.iter_batches(batch_size=rows):
        done += batch.num_rows
        yield batch.to_pandas(), done


def _txt_chunks(path: Path, cfg: DataConfig, rows: int, fmt: str) -> Iterator[Chunk]:
    import pandas as pd

    texts: list[str] = []
    done = 0
    with path.open("r", encoding=cfg.encoding, newline="\n") as handle:
        for line in handle:
            done += len(line.encode(cfg.encoding, errors="replace"))
            if line.strip():
                texts.append(line.rstrip("\r\n"))
            if len(texts) == rows:
                yield pd.DataFrame({cfg.text_column: texts}), done
                texts = []
    if texts:
        yield pd.DataFrame({cfg.text_column: texts}), done
