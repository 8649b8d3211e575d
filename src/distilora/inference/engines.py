"""Engines turn a padded batch (numpy arrays) into logits: PyTorch or ONNX Runtime, same inputs, same outputs."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from distilora.runfolder import RunFolder


class Engine(Protocol):
    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


class TorchEngine:
    """The run's PyTorch model (LoRA merged in for speed)."""

    def __init__(self, model, threads: int | None = None):
        import inspect

        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids")
                       if name in inspect.signature(model.forward).parameters]

    @classmethod
    def from_run(cls, folder: RunFolder, threads: int | None = None) -> "TorchEngine":
        from distilora.modeling.loading import load_run_model

        model, _ = load_run_model(folder.path, merge=True)
        return cls(model, threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            inputs = {name: torch.from_numpy(batch[name]) for name in self.inputs}
            return self.model(**inputs).logits.float().numpy()


class OnnxEngine:
    """An exported ONNX graph on ONNX Runtime's CPU provider; feeds only the inputs the graph declares."""

    def __init__(self, model_file: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle ORT threads would otherwise busy-wait and steal the CPU from everything else in the process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], {name: batch[name] for name in self.inputs})[0]
