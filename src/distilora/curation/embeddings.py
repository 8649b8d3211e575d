"""Sentence embeddings from a backbone's encoder: the mean of its last hidden states over real tokens, L2-normalised
(how sentence-transformers models such as the bundled MiniLM and mpnet are meant to be read).

They are the cheap features that the label audit cross-fits on and that diverse active-learning picks spread over.
Each set is cached in the user cache, keyed by the backbone's files, max_length and the exact texts, so running an
audit again (other folds, other cleaning) encodes nothing twice.
"""
from __future__ import annotations

import hashlib
from itertools import chain
from pathlib import Path

import numpy as np

from distilora.cache import cache_root, read_cached_rows, text_stream
from distilora.runfolder import atomic_write_file

CACHE_FORMAT = "distilora-embeddings-1"


def default_cache_dir() -> Path:
    return cache_root() / "embeddings"


def embedding_key(backbone_path: str, texts: list[str], pairs: list[str] | None, max_length: int) -> str:
    """sha256 of the backbone folder (name, size and mtime of each file), max_length, texts and pairs."""
    digest = hashlib.sha256(f"{CACHE_FORMAT}\nbackbone={backbone_path}\nmax_length={max_length}\n".encode())
    folder = Path(backbone_path)
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for chunk in chain(text_stream("texts", texts), text_stream("pairs", pairs)):
        digest.update(chunk)
    return digest.hexdigest()


def embed_texts(backbone: str, texts: list[str], pairs: list[str] | None = None, *, max_length: int = 128,
                batch_size: int = 64, cache_dir: Path | None = None, progress: bool = True) -> np.ndarray:
    """float32 [len(texts), hidden] unit-length embeddings of ``texts`` by ``backbone`` (a model.backbone value)."""
    from distilora.modeling.backbone import resolve_backbone

    backbone_path = resolve_backbone(backbone)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{embedding_key(backbone_path, texts, pairs, max_length)}.safetensors"
    cached = read_cached_rows(path, "embeddings", len(texts))
    if cached is not None:
        return cached
    vectors = _encode(backbone_path, texts, pairs, max_length, batch_size, progress)
    from safetensors.numpy import save_file

    atomic_write_file(path, lambda tmp: save_file({"embeddings": vectors}, str(tmp), metadata={"backbone": backbone}))
    return vectors


def _encode(backbone_path: str, texts: list[str], pairs: list[str] | None, max_length: int, batch_size: int,
            progress: bool) -> np.ndarray:
    import torch
    from transformers import AutoModel

    from distilora.data.batching import inference_batches, pad_batch
    from distilora.data.tokenize import encode, load_fast_tokenizer, pad_token_id
    from distilora.inference.torch_backend import model_inputs
    from distilora.modeling.backbone import quiet_transformers, unloadable_backbone
    from distilora.progress import progress_bar

    try:
        with quiet_transformers():
            model = AutoModel.from_pretrained(backbone_path, use_safetensors=True).eval()
    except OSError as err:
        raise unloadable_backbone(backbone_path, err) from None
    tokenizer = load_fast_tokenizer(backbone_path)
    encoded = encode(tokenizer, texts, pairs, max_length)
    pad_id = pad_token_id(Path(backbone_path), tokenizer)
    inputs = model_inputs(model)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), progress_bar(len(texts), desc="embed", unit="text", enabled=progress) as bar:
        for indices in inference_batches(encoded.lengths, batch_size):
            batch = {name: torch.from_numpy(array) for name, array in pad_batch(encoded, indices, pad_id).items()
                     if name in inputs}
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out[indices] = torch.nn.functional.normalize(mean, dim=-1).numpy()
            bar.update(len(indices))
    return out
