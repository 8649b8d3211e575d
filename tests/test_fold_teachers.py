"""Out-of-fold teachers (ship.teacher_folds -> distill.fold_teachers): each training text, and each distill.augment
copy of it, is scored by the fold teacher that never trained on it; other teacher-only texts by the teacher."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from distilora.config import build_config, load_config
from distilora.data.loading import load_splits
from distilora.distill.fold_targets import held_out_fold, student_soft_targets
from distilora.errors import ConfigError
from distilora.inference.classifier import Classifier
from distilora.pipeline import ship
from distilora.runfolder import RunFolder, ShipFolder
from test_train_e2e import tiny_raw
from tinymodels import write_tiny_backbone, write_tiny_reviews


def _raw(tmp_path, folds: int) -> dict:
    write_tiny_backbone(tmp_path / "teacher-backbone", layers=2, model_type="mpnet")
    raw = tiny_raw(tmp_path, rows=120, epochs=2)
    raw["output_dir"] = str(tmp_path / "ship")
    raw["distill"] = {"alpha": 0.5, "augment": 1,
                      "unlabeled": str(write_tiny_reviews(tmp_path / "pool.csv", 20, seed=5))}
    raw["ship"] = {"teacher_backbone": str(tmp_path / "teacher-backbone"), "teacher_folds": folds,
                   "teacher_set": ["train.epochs=2"]}
    return raw


def _logits(run, texts):
    return Classifier.load(run, backend="torch").predict_logits(texts)


def _live_models() -> int:
    from transformers import PreTrainedModel

    gc.collect()
    return sum(isinstance(o, PreTrainedModel) for o in gc.get_objects())


def test_each_text_is_scored_by_the_fold_teacher_that_held_it_out(tmp_path):
    before = _live_models()
    folder = ShipFolder(ship(build_config(_raw(tmp_path, folds=2)), stop_after="students", say=lambda _: None))
    # teacher, 2 fold teachers, their scoring and the student ran in this process: none of their models outlives it,
    # so a pipeline's later stages do not carry the earlier stages' weights
    assert _live_models() == before
    student = load_config(RunFolder(folder.student_dir("all")).config_yaml)
    folds = [str(folder.teacher_folds_dir / f"fold-{k}" / "run") for k in range(2)]
    assert student.distill.fold_teachers == folds
    card = (folder.student_dir("all") / "README.md").read_text()
    assert "| teacher targets on training texts | out of fold: 2 fold teachers" in card
    splits = load_splits(student.data, student.distill)
    train, extra = splits.train, splits.unlabeled
    fold = held_out_fold(folds, train)
    assert set(fold) == {0, 1}
    for k, run in enumerate(folds):  # a fold teacher trained on the other fold only, validated on the same split
        fold_data = load_splits(load_config(RunFolder(run).config_yaml).data)
        assert set(fold_data.train.texts) == {t for t, f in zip(train.texts, fold) if f != k}
        assert fold_data.validation.texts == splits.validation.texts
    soft, soft_extra = student_soft_targets(student.distill, train, extra, batch_size=16)
    for k, run in enumerate(folds):
        mine = np.flatnonzero(fold == k)
        np.testing.assert_allclose(soft[mine], _logits(run, [train.texts[i] for i in mine]), atol=1e-4)
        copies = np.flatnonzero(extra.origin >= 0)
        copies = copies[fold[extra.origin[copies]] == k]
        assert len(copies) > 0
        np.testing.assert_allclose(soft_extra[copies], _logits(run, [extra.texts[i] for i in copies]), atol=1e-4)
    pool = np.flatnonzero(extra.origin < 0)
    assert len(pool) > 0
    np.testing.assert_allclose(soft_extra[pool], _logits(folder.teacher_dir, [extra.texts[i] for i in pool]),
                               atol=1e-4)
    assert not np.allclose(soft, _logits(folder.teacher_dir, train.texts), atol=1e-3)


def test_fold_teachers_of_another_split_are_refused_in_one_line(tmp_path):
    folder = ShipFolder(ship(build_config(_raw(tmp_path, folds=2)), stop_after="teacher", say=lambda _: None))
    folds = [str(folder.teacher_folds_dir / "fold-0" / "run")]  # one fold teacher holds half the texts only
    splits = load_splits(build_config(_raw(tmp_path, folds=2)).data)
    with pytest.raises(ConfigError, match=r"distill.fold_teachers: the training text of row \d+ \(\d+ of \d+ in "
                                          r"all\) is in no fold teacher's test split"):
        held_out_fold(folds, splits.train)


def test_one_fold_and_more_folds_than_a_class_has_texts_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="ship.teacher_folds: Value error, one fold holds out every text"):
        build_config(_raw(tmp_path, folds=1))
    raw = _raw(tmp_path, folds=10)
    raw["data"]["train_size"] = 12
    with pytest.raises(ConfigError, match="ship.teacher_folds: 10 folds need 10 training texts of every class"):
        ship(build_config(raw), say=lambda _: None)
    assert not (tmp_path / "ship").exists()
