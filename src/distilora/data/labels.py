"""LabelSpace: the ordered class names of a task, saved with the model and used to encode/decode labels."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from distilora.errors import DataError, DistiloraWarning
from distilora.runfolder import Task


@dataclass(frozen=True)
class LabelSpace:
    """Class names in model-output order. Binary tasks have two names and index 1 is the positive class."""

    names: tuple[str, ...]
    task: Task

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise DataError(f"label names must be unique, got {list(self.names)}")
        if self.task == "binary" and len(self.names) != 2:
            raise DataError(f"a binary task needs exactly 2 classes, got {len(self.names)}: {list(self.names)}")
        if len(self.names) < 2 and self.task != "multilabel":
            raise DataError(f"a classifier needs at least 2 classes, got {list(self.names)}")

    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def is_multilabel(self) -> bool:
        return self.task == "multilabel"

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise DataError(f"unknown label {name!r}; known labels: {list(self.names)}") from None

    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


LIKELY_SEPARATORS = ("|", ";", ",")


def warn_joined_labels(first_rows: dict[str, int], separator: str | None, source: str, column: str) -> None:
    """Say so when class names hold a separator other than data.label_separator ('a|b' read with ','): that is
    usually several labels in one cell, which would otherwise become one made-up class without a word."""
    joined = {name: row for name, row in first_rows.items()
              if any(sep in name and sep != separator for sep in LIKELY_SEPARATORS)}
    if not joined:
        return
    shown = ", ".join(f"{name!r} (row {row})" for name, row in sorted(joined.items(), key=lambda kv: kv[1])[:3])
    setting = f"data.label_separator is {separator!r}" if separator else "data.label_separator is empty"
    warnings.warn(DistiloraWarning(f"{source}: column {column!r}: {len(joined)} label(s) look like several labels "
                                   f"joined, e.g. {shown}, but {setting}; set data.label_separator to the character "
                                   f"between labels, or ignore this if those are real class names"), stacklevel=2)
