"""Distillation end to end on tiny models: layer-dropped students of a trained teacher with soft targets (full and
LoRA), multi-target training from teacher scores in the data, and clear refusals."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from distilora.config import build_config
from distilora.inference.classifier import Classifier
from distilora.runfolder import RunFolder
from distilora.training.runner import train
from test_train_e2e import ENV, tiny_raw
from tinymodels import write_tiny_backbone


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("teacher")
    write_tiny_backbone(base / "backbone", layers=4)
    raw = tiny_raw(base, method="full", epochs=6)
    return train(build_config(raw)), raw


def _distill_cli(tmp_path: Path, raw: dict, *args: str):
    raw = {**raw, "output_dir": str(tmp_path / "student")}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    return subprocess.run([sys.executable, "-m", "distilora.cli", "distill", str(tmp_path / "s.yaml"), *args],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("method, layers", [("full", "odd"), ("lora", "last-2")])
def test_student_from_teacher_layers_with_soft_targets(tmp_path, teacher, method, layers):
    teacher_run, raw = teacher
    raw = {**raw, "model": {**raw["model"], "method": method}, "train": {**raw["train"], "epochs": 3}}
    out = _distill_cli(tmp_path, raw, "--teacher", str(teacher_run), "--layers", layers)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "teacher" in out.stdout and "(4 layers) -> student" in out.stdout
    info = RunFolder(tmp_path / "student").info()
    assert info.student_layers == ([0, 2] if layers == "odd" else [2, 3])
    assert info.total_params < RunFolder(teacher_run).info().total_params
    if method == "lora":
        assert (tmp_path / "student" / "base" / "config.json").is_file()  # the adapter's base is the student
    prediction = Classifier.load(tmp_path / "student").predict("good great app")[0]
    assert prediction.label in ("negative", "positive")
    saved = [json.loads(line) for line in (tmp_path / "student" / "predictions" / "validation.jsonl").open()]
    reloaded = Classifier.load(tmp_path / "student").predict_logits([row["text"] for row in saved])
    assert np.allclose(reloaded, [row["logits"] for row in saved], atol=1e-4)  # the saved base is the trained one


def test_a_lora_teacher_distils_and_its_logits_are_computed_once_for_every_student(tmp_path, monkeypatch):
    from distilora.distill.teacher import default_cache_dir

    monkeypatch.setenv("DISTILORA_CACHE", str(tmp_path / "cache"))
    write_tiny_backbone(tmp_path / "backbone", layers=4)
    raw = tiny_raw(tmp_path, method="lora", epochs=2)
    teacher_run = train(build_config({**raw, "output_dir": str(tmp_path / "teacher")}))
    student = {**raw, "distill": {"teacher": str(teacher_run), "student_layers": "odd"}}

    hard_only = train(build_config({**student, "output_dir": str(tmp_path / "hard"),
                                    "distill": {**student["distill"], "alpha": 1.0}}))
    assert RunFolder(hard_only).info().student_layers == [0, 2]
    assert not default_cache_dir().exists(), "no soft targets, so the teacher is never run"
    for name in ("kd", "kd-again"):
        train(build_config({**student, "output_dir": str(tmp_path / name)}))
        assert len(list(default_cache_dir().iterdir())) == 1, "the second student reads the first one's teacher logits"
    assert Classifier.load(tmp_path / "kd").predict("good great app")[0].label in ("negative", "positive")


def test_multi_target_training_from_teacher_scores(tmp_path):
    source = tmp_path / "rows.csv"
    rows = list(csv.reader((Path(tiny_raw(tmp_path)["data"]["train"])).open()))
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*rows[0], "scores"])
        for i, row in enumerate(rows[1:]):
            score = 0.9 if row[1] == "negative" else 0.1
            cell = json.dumps([["harsh", score], ["spam", 0.05]]) if i % 3 else ""  # a third of the rows have none
            writer.writerow([*row, cell])
    raw = tiny_raw(tmp_path, method="full", epochs=2)
    raw["data"]["train"] = str(source)
    raw["distill"] = {"aux_column": "scores", "sigma": 0.8}
    run = train(build_config(raw))
    info = RunFolder(run).info()
    assert info.aux_names == ["harsh", "spam"]
    assert (run / "model" / "aux_head.safetensors").is_file()
    assert Classifier.load(run).predict("bad awful")[0].label in ("negative", "positive")


def test_bad_layer_spec_is_refused_before_anything_is_written(tmp_path, teacher):
    teacher_run, raw = teacher
    out = _distill_cli(tmp_path, raw, "--teacher", str(teacher_run), "--layers", "0,7")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "distill.student_layers" in out.stderr and "4 layers" in out.stderr
    assert not (tmp_path / "student").exists() and not (tmp_path / "student.partial").exists()
