"""Teacher logits for soft-target distillation, computed once per split and cached on disk.

Running the teacher costs as much as an epoch of inference; caching by content (teacher files, texts, pairs,
max_length) in a user cache folder (``$DISTILORA_CACHE``, else ``~/.cache/distilora``) makes resumed runs, sweeps
and re-runs free, and any change to those inputs is a different key.
"""
from __future__ import annotations

import hashlib
import shutil
from itertools import chain
from pathlib import Path

import numpy as np

from distilora.cache import cache_root, read_cached_rows, text_stream
from distilora.runfolder import RunFolder, atomic_write_file

CACHE_FORMAT = "distilora-teacher-logits-1"
CHUNK_TEXTS = 4096


def cache_key(teacher_run: str | Path, texts: list[str], pairs: list[str] | None, backend: str = "torch") -> str:
    """sha256 of the teacher (run.json; name, size and mtime of every file in each of its model folders: model/
    and any other holding a config, e.g. a LoRA student's saved base, or onnx/), the engine, max_length, texts and
    pairs."""
    folder = RunFolder(teacher_run)
    info = folder.info()
    digest = hashlib.sha256(f"{CACHE_FORMAT}\nmax_length={info.max_length}\nbackend={backend}\n".encode())
    digest.update(folder.run_json.read_bytes())
    engine_dir = folder.model_dir if backend == "torch" else folder.onnx_dir
    model_dirs = [d for d in sorted(folder.path.iterdir()) if d == engine_dir or
                  (d / "config.json").is_file() or (d / "adapter_config.json").is_file()]
    for path in sorted(p for d in model_dirs for p in d.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder.path).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for chunk in chain(text_stream("texts", texts), text_stream("pairs", pairs)):
        digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where teacher logits are kept between runs: $DISTILORA_CACHE/teacher-logits, else under ~/.cache/distilora."""
    return cache_root() / "teacher-logits"


def teacher_engine(teacher_run: str | Path, setting: str) -> str:
    """The backend that scores for a teacher: 'auto' takes an exported fp32 ONNX graph when there is one (checked
    against PyTorch at export, and faster on most CPUs; the fused one first), else torch."""
    if setting != "auto":
        return setting
    from distilora.inference.classifier import ONNX_FILES

    onnx_dir = RunFolder(teacher_run).onnx_dir
    return next((name for name in ("onnx-fused", "onnx") if (onnx_dir / ONNX_FILES[name]).is_file()), "torch")


def teacher_logits(teacher_run: str | Path, texts: list[str], pairs: list[str] | None, *, cache_dir: Path,
                   batch_size: int = 64, backend: str = "torch", desc: str = "teacher targets") -> np.ndarray:
    """float32 [len(texts), num_labels] logits of the teacher run, read from ``cache_dir`` when computed before.

    Texts are scored in chunks of CHUNK_TEXTS, each cached as it is done, so a killed scoring pass over a large
    unlabelled set resumes where it stopped; the chunks are joined into one file at the end.
    """
    from distilora.progress import progress_bar

    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
    key = cache_key(teacher_run, texts, pairs, backend)
    path = Path(cache_dir) / f"{key}.safetensors"
    cached = read_cached_rows(path, "logits", len(texts))
    if cached is not None:
        return cached
    parts_dir = Path(cache_dir) / f"{key}.parts"
    classifier = None
    chunks = []
    with progress_bar(len(texts), desc=desc, unit="text") as bar:
        for start in range(0, len(texts), CHUNK_TEXTS):
            stop = min(start + CHUNK_TEXTS, len(texts))
            part = parts_dir / f"{start:010d}.safetensors"
            logits = read_cached_rows(part, "logits", stop - start)
            if logits is None:
                if classifier is None:
                    from distilora.inference.classifier import Classifier

                    classifier = Classifier.load(teacher_run, backend=backend)
                logits = np.ascontiguousarray(classifier.predict_logits(
                    texts[start:stop], None if pairs is None else pairs[start:stop], batch_size), dtype=np.float32)
                _save_logits(part, logits, teacher_run)
            chunks.append(logits)
            bar.update(stop - start)
    logits = np.concatenate(chunks) if chunks else np.zeros((0, len(RunFolder(teacher_run).info().labels)), np.float32)
    _save_logits(path, logits, teacher_run)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return logits


def _save_logits(path: Path, logits: np.ndarray, teacher_run: str | Path) -> None:
    from safetensors.numpy import save_file

    atomic_write_file(path, lambda tmp: save_file({"logits": logits}, str(tmp),
                                                  metadata={"teacher": str(teacher_run), "rows": str(len(logits))}))
