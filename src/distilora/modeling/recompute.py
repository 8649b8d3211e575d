"""Activation checkpointing (train.gradient_checkpointing): keep only each transformer layer's input for the backward
pass and recompute the rest of the layer there.

A layer's saved activations (the feed-forward's 4x-wide intermediate, attention outputs, dropout masks) are most of
a training step's memory at long lengths; recomputing them costs about one more forward pass per step. transformers
offers this for some architectures only (not MPNet, the teacher), so distilora wraps the layers itself, one way for
every supported encoder. The wrapper sits on each layer's ``forward``: module names, weights and saved folders do not
change, and inference (no gradients) runs the plain forward.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def recompute_layer_activations(model: "torch.nn.Module") -> int:
    """Checkpoint every transformer layer of ``model`` (a Hugging Face encoder or classifier); returns how many."""
    from distilora.modeling.students import transformer_layers

    layers = transformer_layers(model, "train.gradient_checkpointing")
    for layer in layers:
        layer.forward = _Recomputed(layer.forward)
    return len(layers)


class _Recomputed:
    """A layer's forward that, while gradients are on, keeps only its inputs and recomputes its activations in the
    backward pass (non-reentrant checkpointing, which replays the dropout masks of the first pass)."""

    def __init__(self, forward: Any) -> None:
        self.forward = forward

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch
        from torch.utils.checkpoint import checkpoint

        if not torch.is_grad_enabled():
            return self.forward(*args, **kwargs)
        return checkpoint(self.forward, *args, use_reentrant=False, **kwargs)
