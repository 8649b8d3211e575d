"""Argument and option types shared by the `distilora` commands (spelled out here, so --help imports no numpy)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

Backend = Literal["torch", "torch-bf16", "onnx", "onnx-fused", "onnx-int8"]  # inference.classifier.BACKENDS
AnyBackend = Literal["auto", "torch", "torch-bf16", "onnx", "onnx-fused", "onnx-int8"]  # auto = inference.classifier.fastest_backend
ExportFormat = Literal["merged", "onnx", "onnx-int8"]  # inference.export.FORMATS
ConfigArg = Annotated[Optional[Path], typer.Argument(help="YAML config (see `distilora init`); empty = defaults.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override config fields: --set peft.r=16 train.lr=5e-4")]
