"""Distillation students made from a teacher's own layers: same architecture, fewer transformer layers.

Starting a student from a subset of the teacher's layers (rather than from random weights) keeps the embeddings,
the layers and the head in the teacher's representation space, so soft-target training starts close to the teacher.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distilora.errors import ConfigError
from distilora.modeling.build import count_parameters

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

__all__ = ["parse_layer_spec", "num_layers", "transformer_layers", "build_student", "count_parameters",
           "describe_reduction", "check_same_tokenizer"]

SPEC_FIELD = "distill.student_layers"
_SPEC_FORMS = "all, odd, even, first-K, last-K, uniform-K (1 <= K <= layers) or a list of 0-based indices"


@dataclass(frozen=True)
class _Layout:
    """Where an architecture keeps its transformer layers (relative to its base model) and their count in config."""

    layers_path: str
    count_key: str


_LAYOUTS = {
    "bert": _Layout("encoder.layer", "num_hidden_layers"),
    "roberta": _Layout("encoder.layer", "num_hidden_layers"),
    "xlm-roberta": _Layout("encoder.layer", "num_hidden_layers"),
    "distilbert": _Layout("transformer.layer", "n_layers"),
    "mpnet": _Layout("encoder.layer", "num_hidden_layers"),
}


def parse_layer_spec(spec: str | list[int], num_layers: int) -> list[int]:
    """Turn distill.student_layers into sorted, unique 0-based layer indices of a teacher with ``num_layers`` layers.

    People number layers 1..L, so 'odd' keeps layers 1, 3, 5.. (indices 0, 2, 4..) and 'even' keeps 2, 4, 6..;
    'uniform-K' spreads K layers evenly and always keeps the last one, whose output the head was trained on.
    """
    def fail(why: str) -> ConfigError:
        return ConfigError(f"{SPEC_FIELD}: {spec!r} {why}; the teacher has {num_layers} layers "
                           f"(use {_SPEC_FORMS} 0..{num_layers - 1})")

    if isinstance(spec, str):
        name = spec.strip().lower()
        if name == "all":
            chosen = list(range(num_layers))
        elif name == "odd":
            chosen = list(range(0, num_layers, 2))
        elif name == "even":
            chosen = list(range(1, num_layers, 2))
        else:
            match = re.fullmatch(r"(first|last|uniform)-(\d+)", name)
            if match is None:
                raise fail("is not a known layer choice")
            kind, k = match.group(1), int(match.group(2))
            if not 1 <= k <= num_layers:
                raise fail(f"asks for {k} layers")
            if kind == "first":
                chosen = list(range(k))
            elif kind == "last":
                chosen = list(range(num_layers - k, num_layers))
            else:
                chosen = [(i + 1) * num_layers // k - 1 for i in range(k)]
        if not chosen:
            raise fail("selects no layers")
        return chosen
    if not isinstance(spec, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
        raise fail("is not a known layer choice")
    if not spec:
        raise fail("selects no layers")
    outside = [i for i in spec if not 0 <= i < num_layers]
    if outside:
        raise fail(f"has indices out of range ({', '.join(map(str, outside))})")
    if len(set(spec)) != len(spec):
        repeated = sorted({i for i in spec if spec.count(i) > 1})
        raise fail(f"repeats layer {', '.join(map(str, repeated))}")
    return sorted(spec)


def _layout(model: "PreTrainedModel", field: str = SPEC_FIELD) -> _Layout:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    layout = _LAYOUTS.get(model_type)
    if layout is None:
        raise ConfigError(f"{field}: cannot find the layers of a '{model_type}' model; "
                          f"supported architectures: {', '.join(_LAYOUTS)}")
    return layout


def _layer_list_name(model: "PreTrainedModel", layout: _Layout) -> str:
    """Full module name of the layer list: 'bert.encoder.layer' in a classifier, 'encoder.layer' in a bare model."""
    return layout.layers_path if model.base_model is model else f"{model.base_model_prefix}.{layout.layers_path}"


def transformer_layers(model: "PreTrainedModel", field: str) -> "torch.nn.ModuleList":
    """The transformer layers of a supported encoder, in order (a bare model or a classifier around one); ``field``
    names the setting that asked, for the error on an unsupported architecture."""
    return model.get_submodule(_layer_list_name(model, _layout(model, field)))


def num_layers(model: "PreTrainedModel") -> int:
    """The number of transformer layers of a supported encoder (from its config)."""
    return int(getattr(model.config, _layout(model).count_key))


def build_student(teacher: "PreTrainedModel", layers: list[int]) -> "PreTrainedModel":
    """A new model of the teacher's class keeping only ``layers`` (0-based, used in increasing order).

    Embeddings, the chosen layers and every other weight (pooler, classification head) are copied exactly; the
    chosen indices are recorded as ``config.distilora_student_layers`` so a saved student says where it came from.
    """
    from transformers import PreTrainedModel

    if not isinstance(teacher, PreTrainedModel):
        raise ConfigError(f"{SPEC_FIELD}: a student is built from a plain Hugging Face model, not a "
                          f"{type(teacher).__name__}; merge LoRA adapters into the teacher first")
    layout = _layout(teacher)
    chosen = parse_layer_spec(list(layers), num_layers(teacher))
    config = copy.deepcopy(teacher.config)
    setattr(config, layout.count_key, len(chosen))
    config.distilora_student_layers = chosen
    student = type(teacher)(config).to(device=teacher.device, dtype=teacher.dtype)

    layer_list = _layer_list_name(teacher, layout)
    pattern = re.compile(rf"{re.escape(layer_list)}\.(\d+)\.(.+)")
    teacher_state = teacher.state_dict()
    copied = {}
    for key, target in student.state_dict().items():
        match = pattern.fullmatch(key)
        source = f"{layer_list}.{chosen[int(match.group(1))]}.{match.group(2)}" if match else key
        weight = teacher_state.get(source)
        if weight is not None and weight.shape == target.shape:
            copied[key] = weight.detach().clone()
    student.load_state_dict(copied, strict=False)
    student.train(teacher.training)
    return student


def _human(count: int) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.1f}{suffix}"
    return str(count)


def describe_reduction(teacher: "PreTrainedModel", student: "PreTrainedModel") -> str:
    """One line for logs and reports, e.g. 'teacher 22.7M params (6 layers) -> student 17.4M (3 layers): -23%'."""
    teacher_total = count_parameters(teacher)[1]
    student_total = count_parameters(student)[1]
    change = round(100 * (student_total - teacher_total) / teacher_total) if teacher_total else 0
    return (f"teacher {_human(teacher_total)} params ({num_layers(teacher)} layers) -> student "
            f"{_human(student_total)} ({num_layers(student)} layers): {change:+d}%")


def _vocabulary(folder: Path) -> list[str | None]:
    """Tokens by id from tokenizer.json (model vocab + added tokens) or vocab.txt; gaps are None."""
    by_id: dict[int, str] = {}
    tokenizer_json = folder / "tokenizer.json"
    vocab_txt = folder / "vocab.txt"
    if tokenizer_json.is_file():
        try:
            data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
            vocab = data["model"]["vocab"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise ConfigError(f"{tokenizer_json}: unreadable tokenizer file ({err})") from None
        if isinstance(vocab, dict):  # WordPiece / BPE / WordLevel: token -> id
            by_id.update({int(i): token for token, i in vocab.items()})
        else:  # Unigram: [[token, score], ...] in id order
            by_id.update({i: entry[0] for i, entry in enumerate(vocab)})
        by_id.update({int(t["id"]): t["content"] for t in data.get("added_tokens") or []})
    elif vocab_txt.is_file():
        lines = vocab_txt.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        by_id.update(enumerate(lines))
    else:
        raise ConfigError(f"{folder}: no tokenizer.json or vocab.txt found; pass a Hugging Face model folder "
                          f"that includes its tokenizer (for a run folder, its model/ folder)")
    size = max(by_id) + 1 if by_id else 0
    return [by_id.get(i) for i in range(size)]


def check_same_tokenizer(teacher_dir: str | Path, student_dir: str | Path) -> None:
    """Refuse a teacher/student pair whose vocabularies differ, naming both folders and the first difference."""
    teacher_dir, student_dir = Path(teacher_dir), Path(student_dir)
    teacher_vocab, student_vocab = _vocabulary(teacher_dir), _vocabulary(student_dir)
    if teacher_vocab == student_vocab:
        return
    differences = []
    if len(teacher_vocab) != len(student_vocab):
        differences.append(f"{len(teacher_vocab)} tokens vs {len(student_vocab)}")
    first = next((i for i, (a, b) in enumerate(zip(teacher_vocab, student_vocab)) if a != b), None)
    if first is not None:
        differences.append(f"token id {first} is {teacher_vocab[first]!r} vs {student_vocab[first]!r}")
    raise ConfigError(f"tokenizers differ: teacher {teacher_dir} vs student {student_dir} ({'; '.join(differences)}); "
                      f"use a student backbone that shares the teacher's tokenizer")
