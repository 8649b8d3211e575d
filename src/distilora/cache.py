"""The user cache: one root for everything distilora keeps between runs (teacher logits, text embeddings, installed
backbones), and the byte stream that keys cached results to the exact texts they were computed on.

``$DISTILORA_CACHE`` when set, else ``~/.cache/distilora``; nothing here is needed to read a run folder.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


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
