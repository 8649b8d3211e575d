"""Uploaded files for the server: CSV or JSONL, read from the run's own columns, every row checked against the limits.

Each refusal is an HTTP error that names the file, the row or line, and the limit, so the user can fix the file.
"""
from __future__ import annotations

import csv
import io
import json

from fastapi import HTTPException


def texts_from_upload(filename: str, raw: bytes, columns: list[str], max_rows: int, max_chars: int) -> list[list[str]]:
    """The texts of an uploaded CSV / JSONL file, one list per column: the run's text column (data.text_column) and,
    for a run trained on text pairs, its pair column."""
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(status_code=400, detail=f"{filename}: not UTF-8 text") from None
    wanted = " and ".join(f"'{c}'" for c in columns)
    if filename.lower().endswith(".jsonl"):
        rows = _jsonl_rows(filename, content, columns)
    elif filename.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(content))
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise HTTPException(status_code=400, detail=f"{filename}: needs a '{missing[0]}' column (found "
                                                        f"{reader.fieldnames})")
        rows = [[row[c] or "" for c in columns] for row in reader]
    else:
        raise HTTPException(status_code=400, detail=f"{filename}: upload a .csv (with {wanted} columns) or a .jsonl "
                                                    f"file")
    if not rows:
        raise HTTPException(status_code=400, detail=f"{filename}: no texts found")
    if len(rows) > max_rows:
        raise HTTPException(status_code=413, detail=f"{filename}: {len(rows)} rows; the limit is {max_rows} "
                                                    f"(max_file_rows)")
    for number, row in enumerate(rows, start=1):
        for text in row:
            if not text.strip():
                raise HTTPException(status_code=400, detail=f"{filename}: row {number} has an empty text")
            if len(text) > max_chars:
                raise HTTPException(status_code=413, detail=f"{filename}: row {number} has {len(text)} characters; "
                                                            f"the limit is {max_chars} (max_chars)")
    return [list(column) for column in zip(*rows)]


def _jsonl_rows(filename: str, content: str, columns: list[str]) -> list[list[str]]:
    rows = []
    for number, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise HTTPException(status_code=400, detail=f"{filename}: line {number} is not JSON") from None
        for column in columns:
            if not isinstance(row, dict) or not isinstance(row.get(column), str):
                raise HTTPException(status_code=400, detail=f"{filename}: line {number} has no string '{column}' "
                                                            f"field")
        rows.append([row[c] for c in columns])
    return rows
