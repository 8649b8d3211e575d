"""LabelSpace: the ordered class names of a task, saved with the model and used to encode/decode labels."""
from __future__ import annotations

from dataclasses import dataclass

from distilora.errors import DataError
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
