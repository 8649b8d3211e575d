"""Batch order and padding (numpy only): group texts of similar length so batches carry little padding.

Training batches are shuffled and deterministic for a (seed, epoch) pair, so a resumed run sees the same batches;
inference batches run longest first and callers put results back into input order.
"""
from __future__ import annotations

import numpy as np

from distilora.data.tokenize import Encoded

BATCHES_PER_CHUNK = 50  # length-sort within chunks of ~50 batches: little padding, but order stays random


def training_batches(lengths: np.ndarray, batch_size: int, *, seed: int, epoch: int,
                     group_by_length: bool) -> list[np.ndarray]:
    """Row indices per training batch; the last batch may be smaller. With length grouping the longest batch
    comes first, so an out-of-memory batch fails at once rather than hours in."""
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if not group_by_length:
        return _cut(order, batch_size)
    chunk = batch_size * BATCHES_PER_CHUNK
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        batches.extend(_cut(part[np.argsort(-lengths[part], kind="stable")], batch_size))
    batches = [batches[i] for i in rng.permutation(len(batches))]
    if batches:
        longest = int(np.argmax([lengths[b].max() for b in batches]))
        batches.insert(0, batches.pop(longest))
    return batches


def inference_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices per batch, longest texts first (callers restore the input order)."""
    return _cut(np.argsort(-np.asarray(lengths), kind="stable"), batch_size)


def split_by_tokens(indices: np.ndarray, lengths: np.ndarray, max_tokens: int | None) -> list[np.ndarray]:
    """A batch cut into micro-batches of at most ``max_tokens`` padded tokens (rows x longest row), longest rows
    first; a row longer than the budget goes alone. Without a budget, the batch itself."""
    if max_tokens is None:
        return [indices]
    order = indices[np.argsort(-lengths[indices], kind="stable")]
    parts, start = [], 0
    for end in range(1, len(order) + 1):
        if end == len(order) or (end - start + 1) * lengths[order[start]] > max_tokens:
            parts.append(order[start:end])
            start = end
    return parts


def pad_batch(encoded: Encoded, indices: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    """input_ids / attention_mask / token_type_ids as int64 [batch, longest row of the batch]."""
    rows = [encoded.input_ids[i] for i in indices]
    width = max((len(r) for r in rows), default=0)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)
    token_type_ids = np.zeros((len(rows), width), dtype=np.int64)
    for k, (i, ids) in enumerate(zip(indices, rows)):
        input_ids[k, :len(ids)] = ids
        attention_mask[k, :len(ids)] = 1
        token_type_ids[k, :len(ids)] = encoded.token_type_ids[i]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def padding_stats(lengths: np.ndarray, batches: list[np.ndarray]) -> dict[str, float]:
    """Real tokens vs tokens computed after padding each batch to its longest row."""
    lengths = np.asarray(lengths)
    real = float(sum(lengths[b].sum() for b in batches))
    padded = float(sum(len(b) * lengths[b].max() for b in batches if len(b)))
    return {"real_tokens": real, "padded_tokens": padded,
            "padding_fraction": 1.0 - real / padded if padded else 0.0,
            "batches": float(len(batches))}


def _cut(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
