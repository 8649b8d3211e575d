"""Classifier: load a run folder and predict, with scikit-learn-like verbs and a torch or ONNX Runtime engine.

Texts are tokenised by the same Rust tokenizer as in training, batched longest-first (less padding) and put back in
input order. The ONNX path never imports torch, so `distilora predict --backend onnx` starts fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Protocol

import numpy as np

from distilora.data.batching import inference_batches, pad_batch
from distilora.data.tokenize import encode, load_fast_tokenizer, pad_token_id
from distilora.errors import ConfigError, RunFolderError
from distilora.evaluation.metrics import decide, probabilities
from distilora.runfolder import RunFolder, RunInfo

BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-fused", "onnx-int8")
ONNX_FILES = {"onnx": "model.onnx", "onnx-fused": "model.fused.onnx", "onnx-int8": "model.int8.onnx"}


def fastest_backend(folder: RunFolder) -> str:
    """The engine that `distilora export` measured fastest at batch 32, else fp32 ONNX when exported, else torch."""
    import json

    report = folder.onnx_dir / "export.json"
    if report.is_file():
        fastest = json.loads(report.read_text(encoding="utf-8")).get("speed", {}).get("fastest_batch32")
        if fastest in BACKENDS and (fastest.startswith("torch") or (folder.onnx_dir / ONNX_FILES[fastest]).is_file()):
            return fastest
    return "onnx" if (folder.onnx_dir / ONNX_FILES["onnx"]).is_file() else "torch"


class Engine(Protocol):
    """Turns one padded batch (input_ids / attention_mask / token_type_ids as int64 arrays) into logits."""

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


@dataclass
class Prediction:
    """One text's decision: the label (a list of labels for multi-label) and every class's probability."""

    label: str | list[str]
    scores: dict[str, float]


class Classifier:
    """A trained text classifier loaded from a run folder."""

    def __init__(self, info: RunInfo, engine: Engine, tokenizer_dir: Path):
        self.info = info
        self.labels: list[str] = list(info.labels)
        self.task: str = info.task
        self.thresholds = info.thresholds
        self.engine = engine
        self.tokenizer = load_fast_tokenizer(str(tokenizer_dir))
        # settle the truncation settings now: encode() changes the tokenizer only when they differ, so threads that
        # predict at the same time (the server) never modify it while another one is encoding
        encode(self.tokenizer, [], None, info.max_length)
        self.pad_id = pad_token_id(tokenizer_dir, self.tokenizer)

    @classmethod
    def load(cls, path: str | Path, backend: str = "torch", threads: int | None = None) -> "Classifier":
        """Load a run folder. backend: 'torch', 'torch-bf16' (bf16 autocast), 'onnx', 'onnx-fused' or 'onnx-int8'
        (the ONNX ones need `distilora export`), or 'auto' (fastest_backend)."""
        folder = RunFolder(path)
        info = folder.info()
        backend = fastest_backend(folder) if backend == "auto" else backend
        if backend not in BACKENDS:
            raise RunFolderError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        if backend in ("torch", "torch-bf16"):
            from distilora.inference.torch_backend import TorchEngine

            return cls(info, TorchEngine.from_run(folder.path, threads, bf16=backend == "torch-bf16"), folder.model_dir)
        from distilora.inference.onnx_backend import OnnxEngine

        model_file = folder.onnx_dir / ONNX_FILES[backend]
        if not model_file.is_file():
            fmt, note = ("onnx", " (it fuses BERT-type models; onnx/export.json says why not)") \
                if backend == "onnx-fused" else (backend, "")
            raise RunFolderError(f"{model_file}: not exported yet; run `distilora export {folder.path} --format {fmt}`"
                                 f"{note}")
        return cls(info, OnnxEngine(model_file, threads), folder.onnx_dir)

    def predict_logits(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64,
                       progress: str | None = None) -> np.ndarray:
        """Raw logits [n, classes] in input order; progress names a progress bar over the texts (none by default)."""
        from distilora.progress import progress_bar

        self.check_pairs(pairs)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        encoded = encode(self.tokenizer, list(texts), None if pairs is None else list(pairs), self.info.max_length)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with progress_bar(len(texts), desc=progress, unit="text", enabled=progress is not None) as bar:
            for indices in inference_batches(encoded.lengths, batch_size):
                out[indices] = self.engine(pad_batch(encoded, indices, self.pad_id))
                bar.update(len(indices))
        return out

    def check_pairs(self, pairs: list[str] | None) -> None:
        """A run trained on text pairs (data.text_pair_column) scores pairs only, and a single-text run never gets a
        second text: either mistake would give scores that mean nothing, so it fails loudly instead."""
        if self.info.text_pair and pairs is None:
            raise ConfigError("this run classifies text pairs (trained with data.text_pair_column): give the second "
                              "text of each pair too")
        if not self.info.text_pair and pairs is not None:
            raise ConfigError("this run classifies single texts (trained without data.text_pair_column): give no "
                              "second text")

    def predict_proba(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> np.ndarray:
        """Calibrated probabilities [n, classes] (softmax, or per-label sigmoid for multi-label)."""
        return probabilities(self.task, self.predict_logits(texts, pairs, batch_size), self.info.temperature)

    def predict(self, texts: str | list[str], pairs: list[str] | None = None, batch_size: int = 64) -> list[Prediction]:
        """Labels and per-class scores, using the run's stored threshold(s)."""
        if isinstance(texts, str):
            texts = [texts]
        return self.to_predictions(self.predict_proba(texts, pairs, batch_size))

    def to_predictions(self, probs: np.ndarray) -> list[Prediction]:
        """Decisions from probabilities already computed (lets callers batch the model call separately)."""
        decisions = decide(self.task, probs, self.thresholds)
        predictions = []
        for row, decision in zip(probs, decisions):
            scores = {name: round(float(p), 6) for name, p in zip(self.labels, row)}
            if self.task == "multilabel":
                label: str | list[str] = [name for name, on in zip(self.labels, decision) if on]
            else:
                label = self.labels[int(decision)]
            predictions.append(Prediction(label=label, scores=scores))
        return predictions

    def predict_stream(self, texts: Iterable[str], batch_size: int = 64, chunk: int = 1024) -> Iterator[Prediction]:
        """Predict an iterable of any length in chunks, so memory stays bounded and order is kept."""
        iterator = iter(texts)
        while block := list(islice(iterator, chunk)):
            yield from self.predict(block, batch_size=batch_size)
