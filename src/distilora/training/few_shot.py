"""The tiny-data recipe (8-64 labelled texts per class), on by train.few_shot or automatically by training-set size.

With so few texts, a randomly initialised head plus a few optimizer steps learns next to nothing: the encoder's
gradients are noise until the head points somewhere. The recipe, in order:

1. the head reads the mean of the token states (model.pooling: mean) where the backbone allows it, as a
   sentence-embedding backbone was trained to be read, and all weights train (model.method: full), unless the
   config set either field itself;
2. single-label tasks: contrastive tuning on pairs of training texts (training/contrastive.py, SetFit's idea);
3. the head's output layer starts where a logistic regression on the features it receives (scaled to unit length)
   puts it;
4. training then runs for at least train.few_shot_epochs passes, adapting encoder and head together.

With data.validation_fraction 0 nothing is held out: the run keeps its lowest-training-loss step and uses plain
0.5 / argmax decisions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from distilora.config import RunConfig

if TYPE_CHECKING:
    import torch

    from distilora.data.dataset import DataSplits
    from distilora.data.tokenize import Encoded

MAX_TEXTS_PER_CLASS = 64


def few_shot_applies(cfg: RunConfig, splits: "DataSplits") -> bool:
    """train.few_shot true, or 'auto' with at most MAX_TEXTS_PER_CLASS training texts per class on average."""
    if isinstance(cfg.train.few_shot, bool):
        return cfg.train.few_shot
    return len(splits.train) <= MAX_TEXTS_PER_CLASS * splits.label_space.num_labels


def training_settings(cfg: RunConfig, splits: "DataSplits", few_shot: bool) -> RunConfig:
    """The settings the run trains under (the saved config stays the user's): the few-shot model fields and epochs,
    and for a run with nothing held out, selection by training loss with no threshold tuning or temperature."""
    model, train, evaluation = {}, {}, {}
    if few_shot:
        model = _few_shot_model_fields(cfg)
        if cfg.train.max_steps is None:
            train["epochs"] = max(cfg.train.epochs, cfg.train.few_shot_epochs)
    if not splits.validation_held_out:
        train.update(metric="loss", early_stopping_patience=None)
        evaluation.update(tune_threshold="none", calibrate=False)
    return cfg.model_copy(update={"model": cfg.model.model_copy(update=model),
                                  "train": cfg.train.model_copy(update=train),
                                  "eval": cfg.eval.model_copy(update=evaluation)})


def _few_shot_model_fields(cfg: RunConfig) -> dict[str, str]:
    """Full tuning and mean pooling (where the architecture allows it), for the fields the user left unset."""
    from transformers import AutoConfig

    from distilora.modeling.backbone import resolve_backbone, unloadable_backbone
    from distilora.modeling.pooling import supports_mean_pooling

    chosen = cfg.model.model_fields_set
    fields = {} if "method" in chosen else {"method": "full"}
    if "pooling" not in chosen and cfg.distill.student_layers == "all":
        path = resolve_backbone(cfg.model.backbone)
        try:
            model_type = AutoConfig.from_pretrained(path).model_type
        except OSError as err:
            raise unloadable_backbone(path, err) from None
        if supports_mean_pooling(model_type):
            fields["pooling"] = "mean"
    return fields


def prepare_few_shot(module: "torch.nn.Module", encoded: "Encoded", labels: np.ndarray, pad_id: int,
                     batch_size: int, seed: int, *, show_progress: bool = True) -> None:
    """Stages 2 and 3 of the recipe: contrastive tuning (single-label only: pairs need one class per text), then the
    head's warm start."""
    from distilora.training.contrastive import contrastive_tune

    if labels.ndim == 1:
        contrastive_tune(module, head_output_layer(module.classifier), encoded, labels, pad_id, seed,
                         show_progress=show_progress)
    warm_start_head(module, encoded, labels, pad_id, batch_size, seed)


def warm_start_head(module: "torch.nn.Module", encoded: "Encoded", labels: np.ndarray, pad_id: int,
                    batch_size: int, seed: int) -> None:
    """Set the head's last linear layer (of ``module``, a training module) to a logistic regression fitted on the
    features that layer receives for the training texts."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from distilora.training.loop import predict_logits

    last = head_output_layer(module.classifier)
    features: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda _m, inputs, _out: features.append(inputs[0].detach().float()))
    try:
        predict_logits(module, encoded, batch_size, pad_id)
    finally:
        hook.remove()
    order = _batch_order(encoded, batch_size)
    x = np.zeros((len(labels), last.in_features), dtype=np.float32)
    x[order] = torch.cat(features).numpy()
    multilabel = labels.ndim == 2
    # scaled to unit length on average, as SetFit's head sees normalised embeddings: with a few dozen texts in
    # hundreds of dimensions, that L2 penalty is what keeps the fit from memorising them (the pooled features have
    # nearly one length each, so one scale stands for per-row normalisation); folded back into the layer below
    scale = float(np.linalg.norm(x, axis=1).mean()) + 1e-6
    head = LogisticRegression(max_iter=2000, random_state=seed)
    fitted = (OneVsRestClassifier(head) if multilabel else head).fit(x / scale, labels)
    if multilabel:
        weight = np.stack([e.coef_[0] for e in fitted.estimators_])
        bias = np.array([e.intercept_[0] for e in fitted.estimators_])
    elif last.out_features == 2 and fitted.coef_.shape[0] == 1:  # binary: softmax over [-z/2, z/2] is sigmoid(z)
        weight = np.concatenate([-fitted.coef_ / 2, fitted.coef_ / 2])
        bias = np.array([-fitted.intercept_[0] / 2, fitted.intercept_[0] / 2])
    else:
        weight, bias = np.zeros((last.out_features, last.in_features)), np.full(last.out_features, -10.0)
        weight[fitted.classes_], bias[fitted.classes_] = fitted.coef_, fitted.intercept_
    weight = weight / scale
    with torch.no_grad():
        last.weight.copy_(torch.as_tensor(weight, dtype=last.weight.dtype))
        last.bias.copy_(torch.as_tensor(bias, dtype=last.bias.dtype))


def head_output_layer(classifier: "torch.nn.Module") -> "torch.nn.Linear":
    """The head's output layer: the last trainable linear layer inside the head modules (for LoRA, the trained copy
    PEFT keeps in modules_to_save)."""
    import torch

    from distilora.modeling.build import head_modules_for

    base = classifier.get_base_model() if hasattr(classifier, "get_base_model") else classifier
    heads = head_modules_for(base)
    linears = [m for name, m in classifier.named_modules() if isinstance(m, torch.nn.Linear)
               and m.weight.requires_grad and any(f".{h}." in f".{name}." for h in heads)]
    return linears[-1]


def _batch_order(encoded: "Encoded", batch_size: int) -> np.ndarray:
    """Row positions in the order predict_logits runs them (longest first), to put hooked features back."""
    from distilora.data.batching import inference_batches

    return np.concatenate(inference_batches(encoded.lengths, batch_size))
