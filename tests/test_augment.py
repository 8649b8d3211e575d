"""distill.augment: perturbed copies of the training texts that learn from the teacher's soft targets only."""
from __future__ import annotations

import numpy as np
import pytest

from distilora.config import build_config
from distilora.data.augment import augmented_copies
from distilora.data.dataset import TextSplit
from distilora.errors import ConfigError
from distilora.runfolder import RunFolder
from distilora.training.runner import train
from test_train_e2e import tiny_raw


def _split(texts: list[str], pairs: list[str] | None = None) -> TextSplit:
    return TextSplit(name="train", source="train.csv", texts=texts, pairs=pairs, labels=np.zeros(len(texts)),
                     rows=np.arange(1, len(texts) + 1))


def test_copies_keep_words_in_order_differ_from_every_text_and_point_at_their_row():
    texts = [" ".join(f"w{i}_{j}" for j in range(12)) for i in range(20)] + ["single"]
    copies = augmented_copies(_split(texts), copies=3, drop=0.2, seed=0)
    assert copies.labels is None and 20 * 2 <= len(copies) <= 20 * 3  # a copy equal to another is left out
    assert len(set(copies.texts)) == len(copies) and not set(copies.texts) & set(texts)
    for text, row in zip(copies.texts, copies.rows):
        source = texts[row - 1].split()
        words = text.split()
        assert 1 <= len(words) < len(source)
        assert [w for w in source if w in words] == words  # a sub-sequence: order kept, nothing invented
    assert all(row != 21 for row in copies.rows)  # a one-word text has no copy
    again = augmented_copies(_split(texts), copies=3, drop=0.2, seed=0)
    assert again.texts == copies.texts and augmented_copies(_split(texts), 3, 0.2, seed=1).texts != copies.texts


def test_copies_carry_the_second_text_of_a_pair_unchanged():
    copies = augmented_copies(_split(["a b c d e f", "g h i j k l"], pairs=["p", "q"]), copies=2, drop=0.3, seed=0)
    assert copies.pairs == ["p" if row == 1 else "q" for row in copies.rows]


def test_a_copy_that_is_an_evaluation_text_is_dropped(tmp_path):
    from distilora.data.loading import load_splits

    raw = tiny_raw(tmp_path)
    train_file, test_file = tmp_path / "train.csv", tmp_path / "test.csv"
    train_file.write_text("text,label\n" + "".join(f"great movie {i},positive\nbad film {i},negative\n"
                                                   for i in range(10)))
    test_file.write_text("text,label\ngreat movie,positive\nbad film,negative\n")
    raw["data"].update(train=str(train_file), test=str(test_file), validation_fraction=0.2)
    raw["distill"] = {"teacher": str(tmp_path / "teacher"), "augment": 16}
    cfg = build_config(raw)
    splits = load_splits(cfg.data, cfg.distill)
    assert "great movie" not in splits.unlabeled.texts and "bad film" not in splits.unlabeled.texts
    assert {"movie 3", "great 3"} & set(splits.unlabeled.texts)  # other copies are there
    evaluation = set(splits.validation.texts) | set(splits.test.texts)
    assert not evaluation & set(splits.unlabeled.texts)


def test_a_student_trains_on_its_copies_with_the_teacher_targets(tmp_path):
    import json
    import math

    teacher = train(build_config(tiny_raw(tmp_path / "t", epochs=2)))
    raw = tiny_raw(tmp_path / "s", epochs=1)
    raw["distill"] = {"teacher": str(teacher), "alpha": 0.5, "augment": 1}
    folder = RunFolder(train(build_config(raw)))
    splits = json.loads((folder.path / "data_summary.json").read_text())["splits"]
    copies = splits["unlabeled"]["rows"]
    assert 0 < copies <= splits["train"]["rows"] == 88
    assert [h["step"] for h in folder.history()] == [math.ceil((88 + copies) / 8)]  # the copies joined the batches


def test_copies_without_a_teacher_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="distill.augment"):
        train(build_config({**tiny_raw(tmp_path), "distill": {"augment": 2}}))
    assert not (tmp_path / "run.partial").exists()


def test_a_copy_equal_to_a_later_training_text_is_left_out():
    copies = augmented_copies(_split(["good film", "good"]), copies=16, drop=0.5, seed=0)
    assert "good" not in copies.texts and copies.texts == ["film"]
