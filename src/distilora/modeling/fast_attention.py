"""MPNet attention through PyTorch's fused scaled-dot-product kernel, for the teacher's training and scoring.

transformers' MPNet (5.x) computes attention eagerly: it materialises the scores, adds the relative-position bias
and the padding mask, and keeps the softmax output of every layer for the backward pass.
``scaled_dot_product_attention`` takes the bias and the mask as one additive float mask and computes the same thing
in a fused kernel: 1.12x faster per teacher training step here (BENCHMARKS.md, teacher memory). Its memory saving
needs no attention dropout: with dropout, PyTorch's CPU kernel falls back to the path that keeps the probabilities,
so in training the memory lever is train.gradient_checkpointing; at inference the fused kernel always applies.

The swap changes the class of each attention module in place: the weights, their names and the saved folder stay
those of a plain ``MPNetForSequenceClassification``, so PEFT, save_pretrained and ONNX export are untouched (a
loaded run folder is plain eager MPNet again). Asking for attention probabilities falls back to the eager code.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers.models.mpnet.modeling_mpnet import MPNetSelfAttention


class SdpaMPNetSelfAttention(MPNetSelfAttention):
    """MPNetSelfAttention whose forward calls scaled_dot_product_attention (same weights, same outputs)."""

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_bias: torch.Tensor | None = None, output_attentions: bool = False,
                **kwargs: Any) -> tuple[torch.Tensor, ...]:
        if output_attentions:
            return super().forward(hidden_states, attention_mask, position_bias, output_attentions, **kwargs)
        shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        q, k, v = (layer(hidden_states).view(shape).transpose(1, 2) for layer in (self.q, self.k, self.v))
        bias = _added(position_bias, attention_mask)
        if bias is not None:
            bias = bias.to(q.dtype)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                 dropout_p=self.dropout.p if self.training else 0.0)
        context = context.transpose(1, 2).reshape(*hidden_states.shape[:-1], self.all_head_size)
        return (self.o(context),)


def _added(position_bias: torch.Tensor | None, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    if position_bias is None:
        return attention_mask
    return position_bias if attention_mask is None else position_bias + attention_mask


def use_fused_attention(model: torch.nn.Module) -> int:
    """Switch every MPNet self-attention module inside ``model`` to the fused kernel; returns how many were switched
    (0 for other architectures, whose transformers classes choose SDPA themselves)."""
    switched = 0
    for module in model.modules():
        if type(module) is MPNetSelfAttention:
            module.__class__ = SdpaMPNetSelfAttention
            switched += 1
    return switched
