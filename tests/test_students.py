"""Students built from a teacher's layers: exact copies of the chosen layers, embeddings and head."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from distilora.errors import ConfigError
from distilora.modeling.students import (build_student, check_same_tokenizer, count_parameters, describe_reduction,
                                         parse_layer_spec)
from tinymodels import write_tiny_backbone, write_tiny_tokenizer

LAYER_LISTS = {"bert": "bert.encoder.layer", "roberta": "roberta.encoder.layer",
               "distilbert": "distilbert.transformer.layer"}


@pytest.mark.parametrize("spec, expected", [
    ("all", [0, 1, 2, 3, 4, 5]),
    ("odd", [0, 2, 4]),
    ("even", [1, 3, 5]),
    ("first-2", [0, 1]),
    ("last-2", [4, 5]),
    ("uniform-3", [1, 3, 5]),
    ("uniform-4", [0, 2, 3, 5]),
    ("uniform-1", [5]),
    ("uniform-6", [0, 1, 2, 3, 4, 5]),
    (" Odd ", [0, 2, 4]),
    ([4, 0, 2], [0, 2, 4]),
])
def test_parse_layer_spec(spec, expected):
    assert parse_layer_spec(spec, 6) == expected


def test_uniform_always_keeps_the_last_layer_and_spreads_the_rest():
    for layers in range(1, 25):
        for k in range(1, layers + 1):
            chosen = parse_layer_spec(f"uniform-{k}", layers)
            assert len(chosen) == k and chosen[-1] == layers - 1 and chosen == sorted(set(chosen))
            gaps = [b - a for a, b in zip([-1, *chosen], chosen)]
            assert max(gaps) - min(gaps) <= 1


@pytest.mark.parametrize("spec, why", [
    ("first-7", "asks for 7 layers"),
    ("last-0", "asks for 0 layers"),
    ("uniform-9", "asks for 9 layers"),
    ("middle", "is not a known layer choice"),
    ("first-", "is not a known layer choice"),
    ([0, 6], r"out of range \(6\)"),
    ([-1, 2], r"out of range \(-1\)"),
    ([1, 1, 2], "repeats layer 1"),
    ([], "selects no layers"),
    ([0, "1"], "is not a known layer choice"),
    ([True], "is not a known layer choice"),
])
def test_bad_specs_name_the_field_value_and_layer_count(spec, why):
    with pytest.raises(ConfigError, match=r"^distill\.student_layers: ") as caught:
        parse_layer_spec(spec, 6)
    message = str(caught.value)
    assert repr(spec) in message and "the teacher has 6 layers" in message
    assert re.search(why, message)


def test_even_on_a_single_layer_teacher_selects_nothing():
    with pytest.raises(ConfigError, match="selects no layers; the teacher has 1 layers"):
        parse_layer_spec("even", 1)


def _classifier(folder: Path, num_labels: int = 3):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(1)  # the head is freshly initialised: make it differ from any other random tensor
    return AutoModelForSequenceClassification.from_pretrained(folder, num_labels=num_labels)


@pytest.fixture(scope="module", params=["bert", "distilbert", "roberta"])
def teacher_folder(request, tmp_path_factory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp(request.param)
    return request.param, write_tiny_backbone(folder, layers=4, model_type=request.param)


@pytest.mark.parametrize("spec", ["odd", "even", "last-1", "uniform-3", [0, 3]])
def test_student_copies_chosen_layers_embeddings_and_head_exactly(teacher_folder, spec):
    model_type, folder = teacher_folder
    teacher = _classifier(folder)
    layers = parse_layer_spec(spec, 4)
    student = build_student(teacher, layers)

    assert type(student) is type(teacher)
    assert student.config.num_hidden_layers == len(layers)
    assert student.config.distilora_student_layers == layers
    assert teacher.config.num_hidden_layers == 4  # the teacher's config is untouched
    teacher_state, student_state = teacher.state_dict(), student.state_dict()
    layer_list = LAYER_LISTS[model_type]
    seen_layers, seen_other = set(), 0
    for key, value in student_state.items():
        match = re.fullmatch(rf"{re.escape(layer_list)}\.(\d+)\.(.+)", key)
        if match:
            position = int(match.group(1))
            source = f"{layer_list}.{layers[position]}.{match.group(2)}"
            seen_layers.add(position)
        else:
            source, seen_other = key, seen_other + 1
        assert torch.equal(value, teacher_state[source]), key
    assert seen_layers == set(range(len(layers)))
    head_keys = [k for k in student_state if k.startswith(("classifier.", "pre_classifier."))]
    embedding_keys = [k for k in student_state if ".embeddings." in k]
    assert head_keys and embedding_keys
    assert len(student_state) == seen_other + sum(1 for k in student_state if k.startswith(layer_list + "."))

    trainable_teacher, total_teacher = count_parameters(teacher)
    trainable_student, total_student = count_parameters(student)
    assert total_student < total_teacher and trainable_student == total_student

    inputs = {"input_ids": torch.tensor([[2, 7, 9, 3], [2, 8, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    student.eval()
    with torch.no_grad():
        logits = student(**inputs).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_keeping_every_layer_reproduces_the_teacher_outputs(teacher_folder):
    _, folder = teacher_folder
    teacher = _classifier(folder).eval()
    student = build_student(teacher, parse_layer_spec("all", 4)).eval()
    inputs = {"input_ids": torch.tensor([[2, 7, 9, 11, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    with torch.no_grad():
        torch.testing.assert_close(student(**inputs).logits, teacher(**inputs).logits, rtol=0, atol=1e-6)


def test_bare_encoder_student(teacher_folder):
    from transformers import AutoModel

    model_type, folder = teacher_folder
    teacher = AutoModel.from_pretrained(folder)
    student = build_student(teacher, [1, 3])
    layer_list = LAYER_LISTS[model_type].split(".", 1)[1]
    student_state, teacher_state = student.state_dict(), teacher.state_dict()
    for key, value in student_state.items():
        source = re.sub(rf"^{re.escape(layer_list)}\.(\d+)\.", lambda m: f"{layer_list}.{[1, 3][int(m.group(1))]}.", key)
        assert torch.equal(value, teacher_state[source]), key
    assert len(student.base_model.get_submodule(layer_list)) == 2


def test_student_saves_and_reloads_with_its_layer_record(tmp_path, teacher_folder):
    from transformers import AutoModelForSequenceClassification

    _, folder = teacher_folder
    student = build_student(_classifier(folder), [0, 2])
    student.save_pretrained(tmp_path / "student")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student")
    assert reloaded.config.distilora_student_layers == [0, 2]
    for key, value in student.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key


def test_student_layers_out_of_range_for_build(teacher_folder):
    _, folder = teacher_folder
    with pytest.raises(ConfigError, match=r"distill\.student_layers: \[0, 4\] has indices out of range \(4\); "
                                          r"the teacher has 4 layers"):
        build_student(_classifier(folder), [0, 4])


def test_unsupported_architecture_lists_the_supported_ones():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    model = GPT2ForSequenceClassification(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50, n_positions=16))
    with pytest.raises(ConfigError, match=r"'gpt2' model; supported architectures: bert, roberta, xlm-roberta, distilbert"):
        build_student(model, [0])


def test_lora_wrapped_teacher_is_refused(tmp_path):
    from peft import LoraConfig, get_peft_model

    teacher = _classifier(write_tiny_backbone(tmp_path / "bert", layers=2))
    wrapped = get_peft_model(teacher, LoraConfig(r=2, target_modules=["query", "value"]))
    with pytest.raises(ConfigError, match="merge LoRA adapters into the teacher first"):
        build_student(wrapped, [0])


def test_describe_reduction(tmp_path):
    teacher = _classifier(write_tiny_backbone(tmp_path / "bert", layers=4, hidden=64))
    student = build_student(teacher, [1, 3])
    total_teacher, total_student = count_parameters(teacher)[1], count_parameters(student)[1]
    change = round(100 * (total_student - total_teacher) / total_teacher)
    assert change < 0
    assert describe_reduction(teacher, student) == (
        f"teacher {total_teacher / 1e3:.1f}K params (4 layers) -> student {total_student / 1e3:.1f}K (2 layers): {change}%")


def test_count_parameters_separates_frozen_weights(tmp_path):
    model = _classifier(write_tiny_backbone(tmp_path / "bert", layers=2))
    for param in model.bert.parameters():
        param.requires_grad = False
    trainable, total = count_parameters(model)
    assert trainable == sum(p.numel() for p in model.classifier.parameters())
    assert total == sum(p.numel() for p in model.parameters())


def test_same_tokenizer_passes_across_tokenizer_json_and_vocab_txt(tmp_path):
    teacher = write_tiny_tokenizer(tmp_path / "teacher")
    check_same_tokenizer(teacher, write_tiny_tokenizer(tmp_path / "student"))
    only_vocab = tmp_path / "vocab_only"
    only_vocab.mkdir()
    shutil.copy(teacher / "vocab.txt", only_vocab / "vocab.txt")
    check_same_tokenizer(teacher, only_vocab)


def test_tokenizer_mismatch_names_both_folders_and_first_differing_token(tmp_path):
    teacher = write_tiny_tokenizer(tmp_path / "teacher")
    student = write_tiny_tokenizer(tmp_path / "student")
    tokenizer_file = student / "tokenizer.json"
    data = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab["movies"] = vocab.pop("movie")
    tokenizer_file.write_text(json.dumps(data), encoding="utf-8")
    movie_id = vocab["movies"]
    with pytest.raises(ConfigError) as caught:
        check_same_tokenizer(teacher, student)
    assert str(caught.value) == (f"tokenizers differ: teacher {teacher} vs student {student} "
                                 f"(token id {movie_id} is 'movie' vs 'movies'); "
                                 f"use a student backbone that shares the teacher's tokenizer")


def test_tokenizer_size_mismatch(tmp_path):
    teacher = tmp_path / "teacher"
    student = tmp_path / "student"
    teacher.mkdir()
    student.mkdir()
    (teacher / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n", encoding="utf-8")
    (student / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\nworld\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"teacher {teacher} vs student {student} (3 tokens vs 4)")):
        check_same_tokenizer(teacher, student)


def test_tokenizer_folder_without_vocabulary(tmp_path):
    teacher = write_tiny_tokenizer(tmp_path / "teacher")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=re.escape(f"{empty}: no tokenizer.json or vocab.txt found")):
        check_same_tokenizer(teacher, empty)


@pytest.mark.slow
def test_three_layer_student_of_the_bundled_minilm():
    from transformers import AutoModelForSequenceClassification

    from distilora.modeling.backbone import resolve_backbone

    try:
        path = resolve_backbone("minilm")
    except ConfigError as err:
        pytest.skip(str(err))
    teacher = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    student = build_student(teacher, parse_layer_spec("odd", 6))
    per_layer = sum(p.numel() for p in teacher.bert.encoder.layer[0].parameters())
    assert count_parameters(student)[1] == count_parameters(teacher)[1] - 3 * per_layer
    assert describe_reduction(teacher, student).startswith("teacher 22.7M params (6 layers) -> student 17.4M (3 layers)")
