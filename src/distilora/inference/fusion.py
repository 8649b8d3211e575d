"""ONNX Runtime's transformer fusion of an exported fp32 graph: each layer's attention, layer norms and GELU become
single ONNX Runtime operators.

The plain graph (`model.onnx`) holds standard ONNX operators only, so any ONNX runtime can load it; the fused one
(`model.fused.onnx`) needs ONNX Runtime, and is its own engine, `onnx-fused`. On long texts it is the fast fp32 graph:
on IMDB reviews ONNX Runtime spent most of the plain graph's time in separate attention products and softmax, and the
fused graph ran 1.3x the plain one's speed over 256 reviews and 1.7x on a batch padded to 512 tokens (BENCHMARKS.md,
"Long texts on an AMX Xeon").
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

FUSABLE = {"bert": "bert"}  # transformers model_type -> ONNX Runtime optimizer model type (MPNet's biased attention
#                             is not a pattern the optimizer knows; it would fuse the layer norms only)


def fuse_graph(graph: Path, target: Path, config: Any) -> str | None:
    """Write the fused form of graph to target. Returns None when written, else why not (nothing is written then):
    an architecture the optimizer does not know, or a graph in which not every layer's attention was fused."""
    kind = FUSABLE.get(getattr(config, "model_type", ""))
    if kind is None:
        return f"ONNX Runtime's fusion does not cover {getattr(config, 'model_type', 'this')!r} models"
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_onnxruntime():
        # opt_level 0: fusion only, no session-time rewrites baked in, so the file stays valid on any CPU
        optimized = optimize_model(str(graph), model_type=kind, num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size, opt_level=0)
    layers = getattr(config, "num_hidden_layers", 0)
    fused = optimized.get_fused_operator_statistics().get("Attention", 0)
    if fused < layers:
        return f"ONNX Runtime fused the attention of {fused} of {layers} layers"
    optimized.save_model_to_file(str(target))
    return None


@contextlib.contextmanager
def quiet_onnxruntime() -> Iterator[None]:
    """ONNX Runtime's optimizer and quantiser log every pass at INFO and generic hints at WARNING; export reports
    what it did itself."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
