"""distilora: compact text classifiers by LoRA / full / head-only fine-tuning and distillation of small encoders.

Heavy modules (torch, transformers) load on first use, so `import distilora` stays cheap.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Classifier", "train", "load_config", "DistiloraError"]


def __getattr__(name: str) -> Any:
    if name == "Classifier":
        from distilora.inference.classifier import Classifier

        return Classifier
    if name == "train":
        from distilora.training.runner import train

        return train
    if name == "load_config":
        from distilora.config import load_config

        return load_config
    if name == "DistiloraError":
        from distilora.errors import DistiloraError

        return DistiloraError
    raise AttributeError(f"module 'distilora' has no attribute {name!r}")
