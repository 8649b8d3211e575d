"""Mean pooling inside a plain BERT classifier, so that sentence-embedding backbones are read the way they were trained.

Sentence-transformers backbones (all-MiniLM-L6-v2 among them) were trained so that the *mean* of their token states
is the sentence embedding; BERT's classification head reads the [CLS] token instead, which in these models carries
far less. On 8 SST-2 sentences per class, a logistic regression reaches 57.5% on mean-pooled features and 54.9% on
the pooler output (BENCHMARKS.md, few-shot). transformers has no mean-pooling BERT classifier, and a custom class
would need remote code to load; so the mean is computed by one more, ordinary encoder layer, initialised so that
its [CLS] output is the layer-normalised mean of the token states:

- queries and keys are zero, so every position attends equally to every unmasked token (padding excluded by the
  attention mask, as in sentence-transformers' mean pooling);
- values are the identity times VALUE_SCALE, so the residual [CLS] state is a 1/VALUE_SCALE share of the sum that
  the layer norm then normalises away;
- the feed-forward branch adds zero (its output projection starts at zero; its input side is the copied last
  layer's, so it can still learn), and both layer norms start as the identity normalisation;
- the pooler's dense layer starts at POOLER_SCALE x identity, where tanh is nearly linear.

The result is a BertForSequenceClassification with one more layer: plain transformers, PEFT and ONNX load and run
it as any other, and training may move the layer away from a plain mean (it starts as one).
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from distilora.errors import ConfigError

if TYPE_CHECKING:
    import torch

VALUE_SCALE = 1000.0
POOLER_SCALE = 0.1
MEAN_POOLING_TYPES = ("bert",)


def supports_mean_pooling(model_type: str) -> bool:
    """Architectures whose layers attend without a position bias, so zero queries give a uniform average."""
    return model_type in MEAN_POOLING_TYPES


def add_mean_pooling_layer(classifier: "torch.nn.Module") -> None:
    """Append the mean-pooling layer to a BERT sequence classifier's encoder (in place) and set its pooler."""
    import torch

    model_type = classifier.config.model_type
    if not supports_mean_pooling(model_type):
        raise ConfigError(f"model.pooling: mean is built for BERT-type backbones, not '{model_type}' (its attention "
                          f"adds a position bias); use model.pooling: cls")
    bert = classifier.base_model
    layer = copy.deepcopy(bert.encoder.layer[-1])
    attention, eye = layer.attention, torch.eye(classifier.config.hidden_size)
    with torch.no_grad():
        for linear in (attention.self.query, attention.self.key, layer.output.dense):
            linear.weight.zero_()
            linear.bias.zero_()
        _set_linear(attention.self.value, eye * VALUE_SCALE)
        _set_linear(attention.output.dense, eye)
        for norm in (attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
        _set_linear(bert.pooler.dense, eye * POOLER_SCALE)
    bert.encoder.layer.append(layer)
    classifier.config.num_hidden_layers += 1


def _set_linear(linear: "torch.nn.Linear", weight: "torch.Tensor") -> None:
    linear.weight.copy_(weight)
    linear.bias.zero_()
