"""Build the model a run trains: backbone + classification head, wrapped for the chosen method.

The head (and BERT's pooler, which feeds it) is always trainable and always saved: with LoRA it goes into
``modules_to_save``, so a reloaded adapter never comes back with a random head.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distilora.config import RunConfig
from distilora.data.labels import LabelSpace
from distilora.errors import ConfigError
from distilora.modeling.backbone import quiet_transformers, resolve_backbone, unloadable_backbone
from distilora.modeling.pooling import add_mean_pooling_layer

if TYPE_CHECKING:
    import torch

# Per architecture: the encoder's linear projections that LoRA adapts by default (attention + feed-forward), and the
# head modules that stay fully trainable. Patterns match module names under `<prefix>.layer.<i>.`.
_LORA_TARGETS = {
    "bert": r"attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense",
    "roberta": r"attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense",
    "xlm-roberta": r"attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense",
    "distilbert": r"attention\.(q_lin|k_lin|v_lin|out_lin)|ffn\.(lin1|lin2)",
    "deberta-v2": r"attention\.self\.(query_proj|key_proj|value_proj)|attention\.output\.dense|intermediate\.dense|output\.dense",
    "mpnet": r"attention\.attn\.(q|k|v|o)|intermediate\.dense|output\.dense",
}
_HEAD_MODULES = {
    "bert": ["pooler", "classifier"],
    "deberta-v2": ["pooler", "classifier"],
    "distilbert": ["pre_classifier", "classifier"],
    "mpnet": ["classifier"],
    "roberta": ["classifier"],
    "xlm-roberta": ["classifier"],
}


@dataclass
class BuiltModel:
    """A model ready to train, plus what is needed to save and describe it."""

    model: "torch.nn.Module"
    backbone_path: str
    head_modules: list[str]
    trainable_params: int
    total_params: int
    student_layers: list[int] | None = None
    own_base: bool = False  # a layer-dropped student or an added pooling layer: the base exists nowhere on disk
    notes: list[str] = field(default_factory=list)


def count_parameters(model: "torch.nn.Module") -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def head_modules_for(model: "torch.nn.Module") -> list[str]:
    """Names of the head modules of a sequence classifier (those that exist on this model)."""
    names = _HEAD_MODULES.get(model.config.model_type, ["pre_classifier", "pooler", "classifier", "score"])
    module_names = [name for name, _ in model.named_modules()]
    heads = [n for n in names if any(m == n or m.endswith("." + n) for m in module_names)]
    if not heads:
        raise ConfigError(f"model.backbone: cannot find the classification head of a '{model.config.model_type}' model")
    return heads


def _belongs_to(param_name: str, modules: list[str]) -> bool:
    """Whether a parameter lives in one of the named modules (matched as a dotted path segment)."""
    dotted = "." + param_name
    return any(f".{module}." in dotted for module in modules)


def lora_target_modules(model: "torch.nn.Module", setting: str | list[str]) -> str | list[str]:
    """What PEFT should wrap: the per-architecture default, every linear layer of the encoder, or the user's list.

    Returned as a full-match regex for 'auto' and 'all-linear', so the head (and pooler) are never wrapped.
    """
    import torch

    if isinstance(setting, list):
        return setting
    if setting == "all-linear":
        layer_linear = [name for name, module in model.named_modules()
                        if isinstance(module, torch.nn.Linear) and re.search(r"\.layers?\.\d+\.", name)]
        if not layer_linear:
            raise ConfigError("peft.target_modules: 'all-linear' found no linear layers inside the encoder layers")
        return "|".join(re.escape(n) for n in layer_linear)
    pattern = _LORA_TARGETS.get(model.config.model_type)
    if pattern is None:
        raise ConfigError(f"peft.target_modules: no default for model type '{model.config.model_type}'; "
                          f"set peft.target_modules to a list of module names or 'all-linear'")
    return rf".*\.layers?\.\d+\.(?:{pattern})"


def load_classifier(backbone_path: str, label_space: LabelSpace, dropout: float | None = None) -> "torch.nn.Module":
    """A *ForSequenceClassification model over the backbone, with the run's labels in its config."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        config = AutoConfig.from_pretrained(backbone_path, num_labels=label_space.num_labels,
                                            id2label=label_space.id2label(), label2id=label_space.label2id(),
                                            problem_type="multi_label_classification" if label_space.is_multilabel
                                            else "single_label_classification")
        if dropout is not None:
            for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
                if hasattr(config, key):
                    setattr(config, key, dropout)
        with quiet_transformers():  # the "newly initialised head" note is expected: we train that head
            return AutoModelForSequenceClassification.from_pretrained(backbone_path, config=config, use_safetensors=True)
    except OSError as err:
        raise unloadable_backbone(backbone_path, err) from None


def wrap_for_method(model: "torch.nn.Module", cfg: RunConfig) -> "torch.nn.Module":
    """Apply the training method: LoRA adapters + trainable head, frozen encoder + trainable head, or everything."""
    heads = head_modules_for(model)
    method = cfg.model.method
    if method == "full":
        return model
    if method == "head":
        for name, param in model.named_parameters():
            param.requires_grad = _belongs_to(name, heads)
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.peft.r, lora_alpha=cfg.peft.alpha,
                      lora_dropout=cfg.peft.dropout, use_rslora=cfg.peft.use_rslora,
                      use_dora=cfg.peft.use_dora,
                      target_modules=lora_target_modules(model, cfg.peft.target_modules), modules_to_save=heads)
    try:
        with quiet_transformers():
            return get_peft_model(model, lora)
    except ValueError as err:
        raise ConfigError(f"peft.target_modules: {str(err).splitlines()[0]}") from None


def plain_base_state(peft_model: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    """The frozen base weights of a PEFT-wrapped model under the names the unwrapped model has: without the LoRA
    factors and saved head copies, with 'base_layer' / 'original_module' folded away. save_pretrained on the wrapped
    base would write the wrapped names, which a plain model then silently ignores (and initialises at random)."""
    state = {}
    for key, value in peft_model.get_base_model().state_dict().items():
        if ".lora_" in key or ".modules_to_save." in key:
            continue
        state[key.replace(".base_layer.", ".").replace(".original_module.", ".")] = value
    return state


def build_model(cfg: RunConfig, label_space: LabelSpace, base: "torch.nn.Module | None" = None) -> BuiltModel:
    """The trainable model of a run. ``base`` (a classifier already built, e.g. a distillation student) replaces
    loading the backbone from disk."""
    import torch

    from distilora.modeling.fast_attention import use_fused_attention
    from distilora.modeling.recompute import recompute_layer_activations

    torch.manual_seed(cfg.train.seed)  # the head's initialisation is part of the run's seed
    backbone_path = resolve_backbone(cfg.model.backbone)
    model = base if base is not None else load_classifier(backbone_path, label_space, cfg.model.dropout)
    use_fused_attention(model)  # MPNet: the fused kernel instead of transformers' eager attention (faster)
    if cfg.model.pooling == "mean":
        add_mean_pooling_layer(model)
    if cfg.train.gradient_checkpointing:
        recompute_layer_activations(model)
    heads = head_modules_for(model)
    wrapped = wrap_for_method(model, cfg)
    trainable, total = count_parameters(wrapped)
    return BuiltModel(model=wrapped, backbone_path=backbone_path, head_modules=heads, trainable_params=trainable,
                      total_params=total, own_base=base is not None or cfg.model.pooling == "mean")
