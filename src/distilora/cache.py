"""The user cache: one root for everything distilora keeps between runs (teacher logits, installed backbones).

``$DISTILORA_CACHE`` when set, else ``~/.cache/distilora``; nothing here is needed to read a run folder.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$DISTILORA_CACHE, else ~/.cache/distilora (not created here)."""
    return Path(os.environ.get("DISTILORA_CACHE") or Path.home() / ".cache" / "distilora")
