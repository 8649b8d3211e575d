"""The audit's silent-wrong-result and too-late cases: each fails (or warns) in one line before anything is written,
names the field or the override at fault, and leaves no .partial folder behind."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runs import make_tiny_run
from test_audit_files import cli, one_line_error
from test_train_e2e import ENV, tiny_raw
from tinymodels import write_tiny_backbone


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("override, says", [
    ("train.metric=auc", "train.metric: 'auc' is not a validation metric of a binary task; choose one of"),
    ("train.class_weights=[1.0,2.0,3.0]", "train.class_weights: got 3 weights for 2 classes"),
])
def test_choices_the_task_decides_fail_before_anything_is_written(tmp_path, override, says):
    out = cli("train", str(_write(tmp_path, tiny_raw(tmp_path, epochs=1))), "--set", override, cwd=tmp_path)
    one_line_error(out, says)
    assert not (tmp_path / "run.partial").exists() and not (tmp_path / "run").exists()
    again = cli("train", str(tmp_path / "c.yaml"), cwd=tmp_path)  # a plain re-run is not blocked by leftovers
    assert again.returncode == 0, again.stderr[-1500:]


def test_override_errors_name_the_override_not_the_yaml_file(tmp_path):
    config = _write(tmp_path, tiny_raw(tmp_path, epochs=1))
    line = one_line_error(cli("train", str(config), "--set", "train.lr=fast", cwd=tmp_path),
                          "--set train.lr=fast: train.lr: Input should be a valid number")
    assert str(config) not in line
    one_line_error(cli("train", str(config), "--set", "train.lrr=1", cwd=tmp_path),
                   "--set train.lrr=1: unknown key 'train.lrr'; did you mean 'train.lr'?")


def test_a_backbone_folder_without_its_tokenizer_is_refused(tmp_path):
    backbone = write_tiny_backbone(tmp_path / "backbone")
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(backbone / name, bare / name)
    raw = tiny_raw(tmp_path, epochs=1)
    raw["model"]["backbone"] = str(bare)
    out = cli("train", str(_write(tmp_path, raw)), cwd=tmp_path)
    if out.returncode == 2 and "no tokenizer found" in out.stderr:  # transformers refused to make a stand-in
        one_line_error(out, str(bare))
    else:
        one_line_error(out, "model.backbone: the tokenizer in", "lacks its real tokenizer files")
    assert not (tmp_path / "run.partial").exists()


def test_labels_joined_with_another_separator_are_warned_about_with_rows(tmp_path):
    data = tmp_path / "ml.csv"
    rows = ["text,labels"] + [f"good text {i},{'pos|neg' if i == 3 else 'pos' if i % 2 else 'neg'}" for i in range(40)]
    data.write_text("\n".join(rows) + "\n")
    raw = tiny_raw(tmp_path, epochs=1)
    raw["data"].update(train=str(data), label_column="labels", label_separator=",")
    out = cli("train", str(_write(tmp_path, raw)), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    warning = [line for line in out.stderr.split("\n") if line.startswith("warning:")]
    assert len(warning) == 1 and "'pos|neg' (row 4)" in warning[0] and "data.label_separator is ','" in warning[0]


def test_metrics_on_the_selection_split_say_so_and_compare_flags_mixed_splits(tmp_path):
    raw = tiny_raw(tmp_path, epochs=1)
    raw["data"]["test_fraction"] = 0.0
    out = cli("train", str(_write(tmp_path, raw)), cwd=tmp_path)
    assert out.returncode == 0 and "validation (" in out.stdout
    assert "note: these figures are on the validation split, which chose the checkpoint" in out.stderr
    assert "temperature 1 (not used: 40 validation texts are too few" in out.stdout
    with_test = make_tiny_run(tmp_path / "other", method="full", task="binary")
    (with_test / "metrics" / "test.json").write_text((with_test / "metrics" / "validation.json").read_text())
    compared = cli("compare", str(tmp_path / "run"), str(with_test), "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-1500:]
    assert "warning: these runs are measured on different splits (test: run; validation: run)" in compared.stderr
    assert "> warning: these runs are measured on different splits" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_cli_choices_are_the_librarys_and_bad_ones_are_refused_by_the_parser(tmp_path):
    from typing import get_args

    from distilora import cli_options
    from distilora.inference.classifier import BACKENDS
    from distilora.inference.export import FORMATS

    assert get_args(cli_options.Backend) == BACKENDS and get_args(cli_options.ExportFormat) == FORMATS
    assert get_args(cli_options.AnyBackend) == ("auto", *BACKENDS)
    out = subprocess.run([sys.executable, "-m", "distilora.cli", "predict", str(tmp_path), "x", "--backend", "tensorrt"],
                         env=ENV, capture_output=True, text=True, timeout=60)
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", out.stderr).split())  # the parser's message, unwrapped from its box
    assert out.returncode == 2 and "'tensorrt' is not one of 'auto', 'torch', 'torch-bf16', 'onnx', 'onnx-fused', 'onnx-int8'" in said
    assert "distilora 0.1.0" in subprocess.run([sys.executable, "-m", "distilora.cli", "--version"], env=ENV,
                                               capture_output=True, text=True, timeout=60).stdout
