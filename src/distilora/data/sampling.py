"""Seeded, stratified index arithmetic (numpy only): splits, subsamples and class re-balancing.

Stratifying keeps every class's share the same in each part, so a small validation split of an imbalanced set
still contains the rare classes. Strata are integer codes per row (a class index, or for multi-label data the
rarest positive label of the row); a stratum with a single row cannot be divided and stays in the training part.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(strata: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split rows into len(fractions) + 1 parts: the rest first, then one part per fraction of all rows.

    Every stratum keeps at least one row in the rest; each held-out part gets at least one row when its
    fraction is positive. Returned indices are sorted.
    """
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    codes, inverse = np.unique(strata, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(codes))]
    counts = np.array([len(m) for m in members])
    available = counts - 1
    taken = np.zeros(len(codes), dtype=np.int64)
    parts: list[list[np.ndarray]] = []
    for fraction in fractions:
        target = int(round(fraction * len(strata)))
        if fraction > 0:
            target = max(target, 1)
        share = allocate(counts, available - taken, target, rng)
        parts.append([members[c][taken[c]:taken[c] + share[c]] for c in range(len(codes))])
        taken += share
    rest = [members[c][taken[c]:] for c in range(len(codes))]
    return [np.sort(np.concatenate(part)).astype(np.int64) for part in (rest, *parts)]


def stratified_subsample(strata: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most ``size`` row indices (sorted), each stratum represented in proportion and by at least one row."""
    strata = np.asarray(strata)
    if size >= len(strata):
        return np.arange(len(strata), dtype=np.int64)
    rng = np.random.default_rng(seed)
    codes, inverse = np.unique(strata, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(len(codes))]
    counts = np.array([len(m) for m in members])
    share = allocate(counts, counts, size, rng)
    picked = [rng.choice(members[c], size=share[c], replace=False) for c in range(len(codes))]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def balance_indices(labels: np.ndarray, mode: str, seed: int) -> np.ndarray:
    """'down': every class cut to the smallest class count; 'up': every class drawn with replacement up to the
    largest. Returns sorted row indices (with repeats for 'up'); 'none' returns every row."""
    labels = np.asarray(labels)
    if mode == "none":
        return np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    if mode == "down":
        smallest = min(len(m) for m in members)
        picked = [rng.choice(m, size=smallest, replace=False) for m in members]
    elif mode == "up":
        largest = max(len(m) for m in members)
        picked = [np.concatenate([m, rng.choice(m, size=largest - len(m), replace=True)]) for m in members]
    else:
        raise ValueError(f"unknown balance mode {mode!r}")
    return np.sort(np.concatenate(picked)).astype(np.int64)


def allocate(weights: np.ndarray, caps: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``target`` rows over strata in proportion to ``weights`` (largest remainder), never above ``caps``,
    giving each stratum with room at least one row while the target allows it."""
    weights = np.asarray(weights, dtype=np.float64)
    caps = np.maximum(np.asarray(caps, dtype=np.int64), 0)
    target = int(min(target, caps.sum()))
    quota = weights * target / weights.sum() if weights.sum() > 0 else np.zeros_like(weights)
    share = np.minimum(np.floor(quota).astype(np.int64), caps)
    share = np.where((share == 0) & (caps > 0), 1, share)
    tie_break = rng.random(len(share)) * 1e-9
    while share.sum() < target:
        room = np.where(share < caps, quota - share + tie_break, -np.inf)
        share[int(np.argmax(room))] += 1
    while share.sum() > target:
        excess = np.where(share > 1, share - quota + tie_break, -np.inf)
        if np.isneginf(excess).all():
            excess = np.where(share > 0, share - quota + tie_break, -np.inf)
        share[int(np.argmax(excess))] -= 1
    return share
