"""User-facing errors: one exception family, raised where the problem is found.

The CLI prints ``str(error)`` on one line and exits non-zero, so every message must name the file, row,
column or field at fault and say what to do about it.
"""
from __future__ import annotations


class DistiloraError(Exception):
    """A problem the user can fix (bad config, bad data, missing file); never a bug in distilora."""


class ConfigError(DistiloraError):
    """The config file or a command-line override is invalid."""


class DataError(DistiloraError):
    """An input data file cannot be read or does not fit the config."""


class RunFolderError(DistiloraError):
    """A run folder is missing, incomplete, or from an incompatible version."""


class ExportError(DistiloraError):
    """An export failed its self-check or cannot be produced for this model."""


class DistiloraWarning(UserWarning):
    """Something that works but is probably not what the user meant; the CLI prints it as one 'warning:' line."""
