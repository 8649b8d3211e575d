"""Argument and option types shared by the `distilora` commands (spelled out here, so --help imports no numpy)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

Backend = Literal["torch", "torch-bf16", "onnx", "onnx-fused", "onnx-int8"]  # inference.classifier.BACKENDS
AnyBackend = Literal["auto", "torch", "torch-bf16", "onnx", "onnx-fused", "onnx-int8"]  # auto = inference.classifier.fastest_backend
ExportFormat = Literal["merged", "onnx", "onnx-int8"]  # inference.export.FORMATS
ConfigArg = Annotated[Optional[Path], typer.Argument(help="YAML config (see `distilora init`); empty = defaults.")]
# how a command reads another file than the training file (eval, predict, select): config.file_data_config
FileTextColumnOpt = Annotated[Optional[str], typer.Option(
    "--text-column", help="The file's text column (default: the run's).")]
FileSetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", help="Other data.* fields for reading this file: data.delimiter=';' data.quoting=none "
                  "data.encoding=latin-1 data.label_encoding=index ...")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override config fields: --set peft.r=16 train.lr=5e-4")]


def file_mapping(text_column: str | None, set_: list[str] | None) -> list[str]:
    """The --text-column and --set options of a command that reads another file, as data.* overrides."""
    return [*([f"data.text_column={text_column}"] if text_column else []), *(set_ or [])]
