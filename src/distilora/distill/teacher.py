"""Teacher logits for soft-target distillation, computed once per split and cached on disk.

Running the teacher costs as much as an epoch of inference; caching by content (teacher files, texts, pairs,
max_length) in a user cache folder (``$DISTILORA_CACHE``, else ``~/.cache/distilora``) makes resumed runs, sweeps
and re-runs free, and any change to those inputs is a different key.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np

from distilora.runfolder import RunFolder, atomic_write_file

CACHE_FORMAT = "distilora-teacher-logits-1"


def _text_stream(label: str, texts: list[str] | None) -> Iterator[bytes]:
    """Length-prefixed, so no two different lists of texts give the same byte stream."""
    if texts is None:
        yield f"{label}:none\n".encode()
        return
    yield f"{label}:{len(texts)}\n".encode()
    for text in texts:
        encoded = text.encode("utf-8")
        yield f"{len(encoded)}:".encode()
        yield encoded


def cache_key(teacher_run: str | Path, texts: list[str], pairs: list[str] | None) -> str:
    """sha256 of the teacher (run.json; name, size and mtime of every file in each of its model folders: model/
    and any other holding a config, e.g. a LoRA student's saved base), max_length, texts and pairs."""
    folder = RunFolder(teacher_run)
    info = folder.info()
    digest = hashlib.sha256(f"{CACHE_FORMAT}\nmax_length={info.max_length}\n".encode())
    digest.update(folder.run_json.read_bytes())
    model_dirs = [d for d in sorted(folder.path.iterdir()) if d == folder.model_dir or
                  (d / "config.json").is_file() or (d / "adapter_config.json").is_file()]
    for path in sorted(p for d in model_dirs for p in d.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder.path).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for chunk in chain(_text_stream("texts", texts), _text_stream("pairs", pairs)):
        digest.update(chunk)
    return digest.hexdigest()


def _read_cached(path: Path, rows: int) -> np.ndarray | None:
    """The cached logits, or None when the file is missing, unreadable or not shaped for these rows."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not path.is_file():
        return None
    try:
        logits = load_file(str(path)).get("logits")
    except (SafetensorError, OSError, ValueError):
        return None
    if logits is None or logits.ndim != 2 or logits.shape[0] != rows or logits.dtype != np.float32:
        return None
    return logits


def default_cache_dir() -> Path:
    """Where teacher logits are kept between runs: $DISTILORA_CACHE/teacher-logits, else under ~/.cache/distilora."""
    root = os.environ.get("DISTILORA_CACHE") or Path.home() / ".cache" / "distilora"
    return Path(root) / "teacher-logits"


def teacher_logits(teacher_run: str | Path, texts: list[str], pairs: list[str] | None, *, cache_dir: Path,
                   batch_size: int = 64) -> np.ndarray:
    """float32 [len(texts), num_labels] logits of the teacher run, read from ``cache_dir`` when computed before."""
    from safetensors.numpy import save_file

    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
    path = Path(cache_dir) / f"{cache_key(teacher_run, texts, pairs)}.safetensors"
    cached = _read_cached(path, len(texts))
    if cached is not None:
        return cached
    from distilora.inference.classifier import Classifier

    classifier = Classifier.load(teacher_run, backend="torch")
    logits = np.ascontiguousarray(classifier.predict_logits(texts, pairs, batch_size), dtype=np.float32)
    atomic_write_file(path, lambda tmp: save_file({"logits": logits}, str(tmp),
                                                  metadata={"teacher": str(teacher_run), "rows": str(len(texts))}))
    return logits
