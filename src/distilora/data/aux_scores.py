"""Teacher scores for multi-target distillation: cells of JSON [[name, score], ...] or [score, ...] lists, checked
and laid out as one float matrix with NaN rows where a training row has no scores."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from distilora.data.readers import is_missing_cell
from distilora.errors import DataError


@dataclass
class _AuxCell:
    """One parsed auxiliary cell: either named scores or a plain list of numbers (None when empty)."""

    named: dict[str, float] | None
    values: list[float] | None


def _parse_aux_cell(value: Any, source: str, row: int, column: str) -> _AuxCell:
    if isinstance(value, str):
        if not value.strip():
            return _AuxCell(None, None)
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{source}: row {row}, column {column!r}: not a JSON list of scores "
                            f"({value[:40]!r}); write [[name, score], ...] or [score, ...]") from None
    if is_missing_cell(value):
        return _AuxCell(None, None)
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else None
    if items == []:
        return _AuxCell(None, None)
    if items is None:
        raise DataError(f"{source}: row {row}, column {column!r}: expected a list of scores, found "
                        f"{type(value).__name__}; write [[name, score], ...] or [score, ...]")
    try:
        if all(isinstance(item, (list, tuple, np.ndarray)) and len(item) == 2 for item in items):
            return _AuxCell({str(name): float(score) for name, score in items}, None)
        return _AuxCell(None, [float(item) for item in items])
    except (TypeError, ValueError):
        raise DataError(f"{source}: row {row}, column {column!r}: scores must be numbers; write "
                        f"[[name, score], ...] or [score, ...]") from None


def aux_names_from_cells(cells: list[Any], source: str, column: str) -> list[str]:
    """Names from the first non-empty [name, score] list; plain score lists get positional names."""
    for row, value in enumerate(cells, start=1):
        cell = _parse_aux_cell(value, source, row, column)
        if cell.named is not None:
            return list(cell.named)
        if cell.values is not None:
            return [f"score_{i}" for i in range(len(cell.values))]
    raise DataError(f"{source}: column {column!r} (distill.aux_column) has no scores in any row")


def parse_aux_cells(cells: list[Any], names: list[str], source: str, column: str) -> np.ndarray:
    """Teacher scores as float32 [n, len(names)], NaN rows where a cell is empty."""
    out = np.full((len(cells), len(names)), np.nan, dtype=np.float32)
    position = {name: i for i, name in enumerate(names)}
    for row, value in enumerate(cells, start=1):
        cell = _parse_aux_cell(value, source, row, column)
        if cell.named is not None:
            unknown = [name for name in cell.named if name not in position]
            if unknown:
                raise DataError(f"{source}: row {row}, column {column!r}: unknown score name {unknown[0]!r}; "
                                f"expected the {len(names)} names {names} (distill.aux_names)")
            if len(cell.named) != len(names):
                raise DataError(f"{source}: row {row}, column {column!r}: {len(cell.named)} scores, expected "
                                f"{len(names)} ({names})")
            for name, score in cell.named.items():
                out[row - 1, position[name]] = score
        elif cell.values is not None:
            if len(cell.values) != len(names):
                raise DataError(f"{source}: row {row}, column {column!r}: {len(cell.values)} scores, expected "
                                f"{len(names)} ({names})")
            out[row - 1] = cell.values
    return out
