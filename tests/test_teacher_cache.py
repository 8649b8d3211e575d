"""Teacher logits: computed once with the run's Classifier, cached by content, identical when read back."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from distilora.distill.teacher import cache_key, teacher_logits
from distilora.errors import ConfigError, RunFolderError
from distilora.runfolder import RunFolder, RunInfo
from tinymodels import write_tiny_backbone

TEXTS = ["good movie", "awful service", "this app is great", "i hate it", "not bad", "so so"]
PAIRS = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A finished full-fine-tuning run folder of a tiny random BERT with three labels."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root = tmp_path_factory.mktemp("teacher")
    backbone = write_tiny_backbone(root / "backbone", layers=2)
    labels = ["negative", "neutral", "positive"]
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=3, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    run = RunFolder(root / "run")
    model.save_pretrained(run.model_dir)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(run.model_dir)
    run.write_info(RunInfo(task="multiclass", labels=labels, method="full", backbone=str(backbone), max_length=32))
    return run.path


@pytest.fixture
def counted_predictions(monkeypatch):
    """Count how often the teacher is actually run (the real Classifier, wrapped)."""
    from distilora.inference.classifier import Classifier

    calls = []
    original = Classifier.predict_logits

    def counting(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Classifier, "predict_logits", counting)
    return calls


def test_second_call_reads_the_cache_bit_for_bit(teacher_run, tmp_path, counted_predictions):
    from distilora.inference.classifier import Classifier

    first = teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path, batch_size=4)
    assert len(counted_predictions) == 1
    second = teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path, batch_size=4)
    assert len(counted_predictions) == 1
    fresh = np.asarray(Classifier.load(teacher_run, backend="torch").predict_logits(TEXTS, None, 4), dtype=np.float32)
    assert first.shape == (len(TEXTS), 3) and first.dtype == np.float32 and second.dtype == np.float32
    assert first.tobytes() == fresh.tobytes() and second.tobytes() == fresh.tobytes()
    assert [p.name for p in tmp_path.iterdir()] == [f"{cache_key(teacher_run, TEXTS, None)}.safetensors"]


def test_changed_text_is_computed_again_under_a_new_key(teacher_run, tmp_path, counted_predictions):
    changed = [*TEXTS[:-1], "so so so"]
    assert cache_key(teacher_run, changed, None) != cache_key(teacher_run, TEXTS, None)
    teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path)
    logits = teacher_logits(teacher_run, changed, None, cache_dir=tmp_path)
    assert len(counted_predictions) == 2 and len(list(tmp_path.iterdir())) == 2
    assert logits.shape == (len(TEXTS), 3)


def test_pairs_are_part_of_the_prediction_and_the_key(teacher_run, tmp_path, counted_predictions):
    pair_teacher = RunFolder(shutil.copytree(teacher_run, tmp_path / "pair-teacher"))
    pair_teacher.write_info(pair_teacher.info().model_copy(update={"text_pair": True}))  # as if trained on pairs
    with_pairs = teacher_logits(pair_teacher.path, TEXTS, PAIRS, cache_dir=tmp_path / "cache")
    without = teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path / "cache")
    assert len(counted_predictions) == 2 and not np.array_equal(with_pairs, without)
    assert cache_key(pair_teacher.path, TEXTS, PAIRS) != cache_key(pair_teacher.path, TEXTS, [""] * len(TEXTS))
    with pytest.raises(ValueError, match="6 texts but 2 pairs"):
        teacher_logits(pair_teacher.path, TEXTS, PAIRS[:2], cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="this run classifies single texts"):  # pairs to a single-text teacher
        teacher_logits(teacher_run, TEXTS, PAIRS, cache_dir=tmp_path / "cache")


def test_key_separates_text_boundaries_and_empty_pairs(teacher_run):
    assert cache_key(teacher_run, ["ab", "c"], None) != cache_key(teacher_run, ["a", "bc"], None)
    assert cache_key(teacher_run, ["a"], None) != cache_key(teacher_run, ["a"], [""])
    assert cache_key(teacher_run, ["a", "b"], None) == cache_key(teacher_run, ["a", "b"], None)


def test_key_follows_the_teacher_weights_and_run_json(teacher_run):
    before = cache_key(teacher_run, TEXTS, None)
    weights = RunFolder(teacher_run).model_dir / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        assert cache_key(teacher_run, TEXTS, None) != before
    finally:
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache_key(teacher_run, TEXTS, None) == before
    run = RunFolder(teacher_run)
    original = run.run_json.read_text(encoding="utf-8")
    try:
        run.write_info(run.info().model_copy(update={"max_length": 16}))
        assert cache_key(teacher_run, TEXTS, None) != before
    finally:
        run.run_json.write_text(original, encoding="utf-8")


def test_unreadable_cache_file_is_recomputed(teacher_run, tmp_path, counted_predictions):
    first = teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path)
    cached = tmp_path / f"{cache_key(teacher_run, TEXTS, None)}.safetensors"
    cached.write_bytes(b"not a safetensors file")
    again = teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path)
    assert len(counted_predictions) == 2 and again.tobytes() == first.tobytes()
    teacher_logits(teacher_run, TEXTS, None, cache_dir=tmp_path)
    assert len(counted_predictions) == 2


def test_missing_teacher_run_is_a_run_folder_error(tmp_path):
    with pytest.raises(RunFolderError, match="run folder not found"):
        teacher_logits(tmp_path / "nope", TEXTS, None, cache_dir=tmp_path / "cache")


def test_key_covers_other_model_folders_but_not_unrelated_files(teacher_run):
    before = cache_key(teacher_run, TEXTS, None)
    run = RunFolder(teacher_run)
    cache, base = run.path / "cache", run.path / "base"
    try:
        cache.mkdir()
        (cache / "earlier.safetensors").write_bytes(b"x")
        assert cache_key(teacher_run, TEXTS, None) == before
        base.mkdir()
        (base / "config.json").write_text("{}", encoding="utf-8")
        assert cache_key(teacher_run, TEXTS, None) != before
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
