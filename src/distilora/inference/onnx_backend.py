"""The ONNX Runtime engine: an exported graph on the CPU provider. Imports no torch, so it starts fast."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from distilora.errors import RunFolderError


class OnnxEngine:
    """Logits from an exported ONNX graph; feeds only the inputs the graph declares."""

    def __init__(self, model_file: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle ORT threads would otherwise busy-wait and take the CPU from everything else in the process
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own unexported types (InvalidProtobuf, Fail, ...)
            raise RunFolderError(f"{model_file}: damaged ONNX graph ({str(err).splitlines()[0][:160]}); write it again "
                                 f"with `distilora export RUN --format onnx`") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], {name: batch[name] for name in self.inputs})[0]
