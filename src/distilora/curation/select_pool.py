"""`distilora select`: score a pool of unlabelled texts with a run and write the k to label next, most useful first,
in the pool's own format (every column kept, plus select_rank and select_score), ready to hand to annotators."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from distilora.curation.selection import Strategy, select_indices
from distilora.errors import ConfigError

SCORE_CHUNK = 4096


def default_selection_path(pool: str) -> Path:
    path = Path(pool)
    return path.with_name(f"{path.stem}-selected{path.suffix}")


def select_from_pool(run: Path, pool: str, k: int, strategy: Strategy, output: Path | None = None, *,
                     backend: str = "torch", batch_size: int = 64, seed: int = 0,
                     data_overrides: list[str] | None = None) -> tuple[Path, int]:
    """Write the selection; returns (where, how many). The pool is read with the run's data mapping changed by
    data_overrides ('data.text_column=body'). An existing output file is never replaced."""
    from distilora.config import file_data_config
    from distilora.data.loading import read_texts, texts_and_pairs
    from distilora.data.readers import read_table
    from distilora.inference.classifier import Classifier
    from distilora.runfolder import RunFolder

    if k < 1:
        raise ConfigError(f"--k {k}: select at least one text")
    output = Path(output) if output is not None else default_selection_path(pool)
    if output.exists():
        raise ConfigError(f"{output}: already exists; pass another --output or move it away")
    folder = RunFolder(run)
    folder.info()  # a missing run folder is named as such, before its config is read
    data = file_data_config(folder.config_yaml, data_overrides)
    lines_file = Path(pool).suffix.lower() == ".txt" and data.format == "auto"
    table = None if lines_file else read_table(pool, data, field="--pool")
    if table is None:
        split = read_texts(pool, data, field="--pool")
        texts, pairs = split.texts, split.pairs
    else:
        texts, pairs = texts_and_pairs(table, data, pool)
    if not texts:
        raise ConfigError(f"{pool}: the pool holds no texts to rank; give a file with at least one")
    classifier = Classifier.load(run, backend=backend)
    probs = _pool_probabilities(classifier, texts, pairs, batch_size)
    embeddings = None
    if strategy == "diverse":
        from distilora.curation.embeddings import embed_texts

        info = classifier.info
        embeddings = embed_texts(info.backbone, texts, pairs, max_length=info.max_length,
                                 batch_size=batch_size)
    positions, scores = select_indices(probs, k, strategy, embeddings=embeddings,
                                       multilabel=classifier.task == "multilabel", seed=seed)
    if table is None:
        from distilora.runfolder import atomic_write_text

        atomic_write_text(output, "".join(texts[i] + "\n" for i in positions))
        return output, len(positions)
    return _write_selection(table, pool, data, positions, scores, output), len(positions)


def _pool_probabilities(classifier, texts: list[str], pairs: list[str] | None, batch_size: int) -> np.ndarray:
    from distilora.progress import progress_bar

    out = np.zeros((len(texts), len(classifier.labels)), dtype=np.float32)
    with progress_bar(len(texts), desc="score pool", unit="text") as bar:
        for start in range(0, len(texts), SCORE_CHUNK):
            stop = start + SCORE_CHUNK
            out[start:stop] = classifier.predict_proba(texts[start:stop], None if pairs is None else pairs[start:stop],
                                                       batch_size)
            bar.update(len(out[start:stop]))
    return out


def _write_selection(table, pool: str, data, positions: np.ndarray, scores: np.ndarray, output: Path) -> Path:
    """The chosen pool rows in rank order, with select_rank and select_score, in the pool's format."""
    from distilora.data.writers import write_like_source

    chosen = table.iloc[positions].copy()
    chosen["select_rank"] = np.arange(1, len(positions) + 1)
    chosen["select_score"] = np.round(scores, 6)
    return write_like_source(chosen, output, pool, data)
