"""The one tokenisation path (training, evaluation, PyTorch and ONNX inference): a Rust `tokenizers` batch encode.

Texts are tokenised once, unpadded; batches are padded later to their own longest row (see batching.py). Only
`tokenizers` and numpy are imported here, so ONNX prediction never loads torch or transformers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from distilora.errors import ConfigError

if TYPE_CHECKING:
    import tokenizers


@dataclass
class Encoded:
    """Token ids per text (with special tokens, no padding) and their segment ids (1 marks the second text)."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray]

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def load_fast_tokenizer(folder: str) -> "tokenizers.Tokenizer":
    """A private copy of a model folder's fast tokenizer with padding turned off.

    tokenizer.json is read directly (cheap, no transformers); folders with only vocab files are converted
    once by transformers.
    """
    from tokenizers import Tokenizer

    tokenizer_json = Path(folder) / "tokenizer.json"
    if tokenizer_json.is_file():
        tokenizer = Tokenizer.from_file(str(tokenizer_json))
    else:
        from transformers import AutoTokenizer

        try:
            loaded = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{folder}: no tokenizer found ({str(err).splitlines()[0]}); the model folder needs "
                              f"tokenizer.json or the tokenizer files saved by save_pretrained") from None
        if not getattr(loaded, "is_fast", False):
            raise ConfigError(f"{folder}: this tokenizer has no fast (Rust) version; distilora needs one "
                              f"(tokenizer.json)")
        tokenizer = Tokenizer.from_str(loaded.backend_tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def encode(tokenizer: "tokenizers.Tokenizer", texts: list[str], pairs: list[str] | None, max_length: int) -> Encoded:
    """Tokenise all texts (and optional second texts) in one parallel call, truncated longest-first."""
    wanted = {"max_length": max_length, "strategy": "longest_first"}
    current = tokenizer.truncation
    if current is None or any(current.get(key) != value for key, value in wanted.items()):
        tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    if tokenizer.padding is not None:
        tokenizer.no_padding()
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} second texts")
    batch = list(zip(texts, pairs)) if pairs is not None else list(texts)
    encodings = tokenizer.encode_batch(batch, add_special_tokens=True)
    return Encoded(input_ids=[np.array(e.ids, dtype=np.int64) for e in encodings],
                   token_type_ids=[np.array(e.type_ids, dtype=np.int64) for e in encodings])


def pad_token_id(tokenizer_dir: Path, tokenizer) -> int:
    """The pad id from the tokenizer folder's own config (no model config needed, so no torch)."""
    config = tokenizer_dir / "tokenizer_config.json"
    pad = "[PAD]"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("pad_token", pad)
        pad = value.get("content", pad) if isinstance(value, dict) else (value or pad)
    token_id = tokenizer.token_to_id(pad)
    return 0 if token_id is None else int(token_id)
