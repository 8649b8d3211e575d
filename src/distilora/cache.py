"""The user cache: one root for everything distilora keeps between runs (teacher logits, text embeddings, installed
backbones), and the byte stream that keys cached results to the exact texts they were computed on.

``$DISTILORA_CACHE`` when set, else ``~/.cache/distilora``; nothing here is needed to read a run folder.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def cache_root() -> Path:
    """$DISTILORA_CACHE, else ~/.cache/distilora (not created here)."""
    return Path(os.environ.get("DISTILORA_CACHE") or Path.home() / ".cache" / "distilora")


def text_stream(label: str, texts: list[str] | None) -> Iterator[bytes]:
    """Bytes to hash for a list of texts; length-prefixed, so no two different lists give the same stream."""
    if texts is None:
        yield f"{label}:none\n".encode()
        return
    yield f"{label}:{len(texts)}\n".encode()
    for text in texts:
        encoded = text.encode("utf-8")
        yield f"{len(encoded)}:".encode()
        yield encoded


def read_cached_rows(path: Path, key: str, rows: int) -> "np.ndarray | None":
    """A cached float32 [rows, k] array stored under ``key`` in a safetensors file, or None when the file is missing,
    unreadable or not shaped for these rows (then the caller computes it again)."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        return None
    try:
        array = load_file(str(path)).get(key)
    except (SafetensorError, OSError, ValueError):
        return None
    if array is None or array.ndim != 2 or array.shape[0] != rows or array.dtype != np.float32:
        return None
    return array
