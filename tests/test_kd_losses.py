"""Distillation losses checked against hand computations on fixed small batches, and the auxiliary head they train."""
from __future__ import annotations

import math

import json

import pytest
import torch
import torch.nn.functional as F

from distilora.distill.losses import aux_score_loss, blend, soft_target_loss
from distilora.errors import ConfigError, RunFolderError
from distilora.modeling.aux_head import AuxHead, load_aux_head, save_aux_head
from tinymodels import write_tiny_backbone

STUDENT = [[1.0, -0.5, 0.2], [0.3, 2.0, -1.0]]
TEACHER = [[2.0, 0.0, -1.0], [-0.5, 1.5, 0.5]]


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _hand_kd(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    total = 0.0
    for s_row, t_row in zip(student, teacher):
        p = _softmax([v / t for v in t_row])
        q = _softmax([v / t for v in s_row])
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    return t * t * total / len(student)


def _hand_sigmoid_kd(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    terms = []
    for s_row, t_row in zip(student, teacher):
        for s, tv in zip(s_row, t_row):
            target, prob = _sigmoid(tv / t), _sigmoid(s / t)
            terms.append(-(target * math.log(prob) + (1 - target) * math.log(1 - prob)))
    return t * t * sum(terms) / len(terms)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("task", ["single", "binary", "multiclass"])
def test_single_label_kd_matches_hand_kl(temperature, task):
    loss = soft_target_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), temperature, task)
    assert loss.item() == pytest.approx(_hand_kd(STUDENT, TEACHER, temperature), rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_multilabel_kd_matches_hand_bce(temperature):
    loss = soft_target_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), temperature, "multilabel")
    assert loss.item() == pytest.approx(_hand_sigmoid_kd(STUDENT, TEACHER, temperature), rel=1e-5)


def test_temperature_squared_scaling():
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    unscaled = F.kl_div(F.log_softmax(student / 3, -1), F.softmax(teacher / 3, -1), reduction="batchmean")
    assert soft_target_loss(student, teacher, 3.0, "single").item() == pytest.approx(9 * unscaled.item(), rel=1e-6)


def test_kd_is_zero_when_student_matches_teacher_and_grad_flows_to_student_only():
    teacher = torch.tensor(TEACHER, requires_grad=True)
    student = torch.tensor(TEACHER, requires_grad=True)
    loss = soft_target_loss(student, teacher, 2.0, "single")
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    moved = torch.tensor(STUDENT, requires_grad=True)
    soft_target_loss(moved, teacher, 2.0, "single").backward()
    assert moved.grad is not None and moved.grad.abs().sum() > 0
    assert teacher.grad is None


def test_kd_rejects_mismatched_shapes_and_unknown_tasks():
    with pytest.raises(ValueError, match="differ in shape"):
        soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 2), 1.0, "single")
    with pytest.raises(ValueError, match="unknown task 'regression'"):
        soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 3), 1.0, "regression")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0, "single")


def test_blend_weights_hard_and_soft():
    hard, soft = torch.tensor(0.7), torch.tensor(2.5)
    assert blend(hard, soft, 1.0).item() == hard.item()
    assert blend(hard, soft, 0.0).item() == soft.item()
    assert blend(hard, soft, 0.3).item() == pytest.approx(0.3 * 0.7 + 0.7 * 2.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        blend(hard, soft, 1.5)


def test_alpha_one_gives_the_hard_loss_exactly():
    logits = torch.tensor(STUDENT)
    hard = F.cross_entropy(logits, torch.tensor([0, 1]))
    soft = soft_target_loss(logits, torch.tensor(TEACHER), 2.0, "single")
    assert torch.equal(blend(hard, soft, 1.0), hard)


def _hand_bce(logit: float, target: float) -> float:
    p = _sigmoid(logit)
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_aux_loss_ignores_nan_rows_and_entries():
    nan = float("nan")
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.1], [-0.3, 0.8]], requires_grad=True)
    targets = torch.tensor([[0.9, 0.2], [nan, nan], [nan, 0.6]])
    loss = aux_score_loss(logits, targets)
    expected = (_hand_bce(0.5, 0.9) + _hand_bce(-1.0, 0.2) + _hand_bce(0.8, 0.6)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[2, 0] == 0
    assert logits.grad[0].abs().sum() > 0 and logits.grad[2, 1] != 0


def test_aux_loss_without_any_scores_is_zero_with_grad():
    logits = torch.tensor([[0.5, -1.0]], requires_grad=True)
    loss = aux_score_loss(logits, torch.full((1, 2), float("nan")))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_aux_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        aux_score_loss(torch.zeros(2, 3), torch.zeros(2, 2))


def test_aux_head_reads_the_first_token_of_the_last_hidden_state(tmp_path):
    from transformers import AutoModelForSequenceClassification

    classifier = AutoModelForSequenceClassification.from_pretrained(
        write_tiny_backbone(tmp_path / "bert", layers=2), num_labels=2).eval()
    head = AuxHead(classifier.config.hidden_size, ["toxic", "insult", "threat"]).eval()
    inputs = {"input_ids": torch.tensor([[2, 7, 9, 3], [2, 8, 3, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    with torch.no_grad():
        hidden = classifier(**inputs, output_hidden_states=True).hidden_states[-1]
        logits = head(hidden)
    assert logits.shape == (2, 3)
    first_token = hidden[:, 0]
    torch.testing.assert_close(logits, first_token @ head.proj.weight.T + head.proj.bias)
    changed = hidden.clone()
    changed[:, 1:] += 5.0
    with torch.no_grad():
        assert torch.equal(head(changed), logits)


def test_save_and_load_round_trip(tmp_path):
    head = AuxHead(16, ["a", "b"], dropout=0.2)
    save_aux_head(head, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "aux_head.json").read_text()) == {"names": ["a", "b"], "hidden_size": 16,
                                                                            "dropout": 0.2}
    loaded = load_aux_head(tmp_path / "run")
    assert loaded is not None and loaded.names == ["a", "b"] and loaded.dropout.p == 0.2 and not loaded.training
    for key, value in head.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["aux_head.json", "aux_head.safetensors"]


def test_load_returns_none_without_a_head(tmp_path):
    assert load_aux_head(tmp_path) is None


def test_load_refuses_half_written_or_mismatched_heads(tmp_path):
    save_aux_head(AuxHead(8, ["a", "b"]), tmp_path)
    (tmp_path / "aux_head.json").write_text(json.dumps({"names": ["a", "b", "c"], "hidden_size": 8}))
    with pytest.raises(RunFolderError, match="aux_head.safetensors: does not fit aux_head.json"):
        load_aux_head(tmp_path)
    (tmp_path / "aux_head.json").unlink()
    with pytest.raises(RunFolderError, match="has aux_head.safetensors but not aux_head.json"):
        load_aux_head(tmp_path)


def test_names_must_be_distinct():
    with pytest.raises(ConfigError, match=r"distill\.aux_names: \['a', 'a'\]"):
        AuxHead(8, ["a", "a"])
