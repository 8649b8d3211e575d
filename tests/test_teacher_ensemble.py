"""Several teachers as one source of soft targets (distill.ensemble): the student learns the mean of their softened
outputs, exactly as the distillation loss reads them, and mismatched or half-set ensembles are refused in one line."""
from __future__ import annotations

import numpy as np
import pytest

from distilora.config import build_config
from distilora.data.loading import load_splits
from distilora.distill.fold_targets import ensemble_logits, student_soft_targets
from distilora.errors import ConfigError
from distilora.inference.classifier import Classifier
from distilora.runfolder import RunFolder
from distilora.training.runner import train
from test_train_e2e import tiny_raw


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_single_label_ensemble_softens_to_the_mean_of_the_teachers(temperature):
    rng = np.random.default_rng(0)
    each = [rng.normal(0, 3, (5, 4)).astype(np.float32) for _ in range(3)]
    out = ensemble_logits(each, temperature, "multiclass")
    expected = np.mean([_softmax(z / temperature) for z in each], axis=0)
    np.testing.assert_allclose(_softmax(out / temperature), expected, rtol=1e-5)
    alone = ensemble_logits(each[:1], temperature, "multiclass")  # one teacher: its own outputs again
    np.testing.assert_allclose(_softmax(alone / temperature), _softmax(each[0] / temperature), rtol=1e-5)


def test_multilabel_ensemble_averages_each_label_on_its_own():
    each = [np.array([[4.0, -2.0]]), np.array([[0.0, -6.0]])]
    out = ensemble_logits(each, 2.0, "multilabel")
    expected = (_sigmoid(each[0] / 2) + _sigmoid(each[1] / 2)) / 2
    np.testing.assert_allclose(_sigmoid(out / 2), expected, rtol=1e-5)


def test_confident_teachers_give_finite_targets():
    each = [np.array([[900.0, -900.0]]), np.array([[-900.0, 900.0]])]
    for task in ("binary", "multilabel"):
        out = ensemble_logits(each, 1.0, task)
        assert np.isfinite(out).all(), task
    np.testing.assert_allclose(_softmax(ensemble_logits(each, 1.0, "binary")), [[0.5, 0.5]], atol=1e-6)


def test_a_student_learns_from_the_mean_of_two_teachers(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILORA_CACHE", str(tmp_path / "cache"))
    raw = tiny_raw(tmp_path, epochs=2)
    teachers = [str(train(build_config({**raw, "output_dir": str(tmp_path / f"teacher-{seed}"),
                                        "train": {**raw["train"], "seed": seed}}))) for seed in (1, 2)]
    distill = {"teacher": teachers[0], "ensemble": teachers[1:], "alpha": 0.5, "temperature": 2.0}
    student = build_config({**raw, "output_dir": str(tmp_path / "student"), "distill": distill,
                            "eval": {"report": True}})
    run = train(student)
    train_split = load_splits(student.data).train
    soft, _ = student_soft_targets(student.distill, train_split, None, batch_size=16)
    each = [Classifier.load(t, backend="torch").predict_logits(train_split.texts) for t in teachers]
    assert not np.allclose(each[0], each[1], atol=1e-3), "two seeds, two different teachers"
    np.testing.assert_allclose(_softmax(soft / 2), np.mean([_softmax(z / 2) for z in each], axis=0), atol=1e-4)
    assert "| teacher ensemble | soft targets averaged over 2 teachers: the teacher and `teacher-2` |" in (
        run / "README.md").read_text()
    assert RunFolder(run).info().labels == ["negative", "positive"]


def test_an_ensemble_on_other_labels_or_without_a_teacher_is_refused(tmp_path):
    raw = tiny_raw(tmp_path, epochs=1)
    binary = str(train(build_config({**raw, "output_dir": str(tmp_path / "binary")})))
    multi = tiny_raw(tmp_path, task="multiclass", epochs=1)
    other = str(train(build_config({**multi, "output_dir": str(tmp_path / "multi")})))
    with pytest.raises(ConfigError, match=r"distill.ensemble: .*multi predicts multiclass labels"):
        train(build_config({**raw, "output_dir": str(tmp_path / "s1"),
                            "distill": {"teacher": binary, "ensemble": [other]}}))
    with pytest.raises(ConfigError, match="distill.ensemble: these runs score alongside the teacher"):
        train(build_config({**raw, "output_dir": str(tmp_path / "s2"), "distill": {"ensemble": [binary]}}))
    with pytest.raises(ConfigError, match="distill.ensemble: training texts take their soft targets from"):
        train(build_config({**raw, "output_dir": str(tmp_path / "s3"),
                            "distill": {"teacher": binary, "ensemble": [binary], "fold_teachers": [binary]}}))
    assert not any((tmp_path / name).exists() for name in ("s1", "s2", "s3", "s1.partial"))
