"""The audit's file cases through the CLI: nothing a user owns is deleted or replaced, damaged weights are one line
naming the file, evaluations of other files never overwrite a run's own splits. Each case asserts the exit code,
a one-line message and what is (still) on disk."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runs import make_tiny_run
from test_train_e2e import ENV, tiny_raw


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distilora.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)


def one_line_error(out: subprocess.CompletedProcess, *needles: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.strip().split("\n") if line.startswith("error:")]
    assert len(lines) == 1, out.stderr[-1500:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("audit-files"), method="lora", task="binary")


def _config(tmp_path: Path, output_dir: str) -> Path:
    raw = tiny_raw(tmp_path, epochs=1)
    raw["output_dir"] = output_dir
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_overwrite_refuses_a_folder_that_is_not_a_run_and_keeps_its_files(tmp_path):
    mine = tmp_path / "my-documents"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    out = cli("train", str(_config(tmp_path, str(mine))), "--overwrite", cwd=tmp_path)
    one_line_error(out, str(mine), "is not a distilora run", "thesis.docx", "nothing was changed")
    assert (mine / "thesis.docx").read_text() == "years of work"
    assert not Path(str(mine) + ".partial").exists()


def test_output_dir_dot_is_a_clear_refusal_not_a_traceback(tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    (work / "notes.txt").write_text("keep")
    raw = tiny_raw(tmp_path, epochs=1)
    raw["output_dir"] = "."
    (work / "c.yaml").write_text(yaml.safe_dump(raw))
    out = cli("train", "c.yaml", "--overwrite", cwd=work)
    one_line_error(out, "is not a distilora run", "notes.txt")
    assert sorted(p.name for p in work.iterdir()) == ["c.yaml", "notes.txt"]


def test_an_empty_output_folder_is_fine(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = cli("train", str(_config(tmp_path, str(empty))), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    assert (empty / "run.json").is_file()


def test_eval_of_a_file_named_like_a_split_keeps_the_runs_own_results(tmp_path, run):
    run = Path(shutil.copytree(run, tmp_path / "run"))
    before = (run / "metrics" / "validation.json").read_bytes()
    predictions = (run / "predictions" / "validation.jsonl").read_bytes()
    data = tmp_path / "validation.csv"
    data.write_text("text,label\ngood great,positive\nbad awful,negative\nlove it,positive\nhate it,negative\n")
    out = cli("eval", str(run), "--data", str(data), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    assert (run / "metrics" / "validation.json").read_bytes() == before
    assert (run / "predictions" / "validation.jsonl").read_bytes() == predictions
    assert json.loads((run / "metrics" / "eval-validation.json").read_text())["intervals"]["metrics"]["accuracy"]
    assert "eval-validation (4 texts)" in out.stdout
    assert "95% bootstrap intervals: accuracy 0." in out.stdout or "95% bootstrap intervals: accuracy 1." in out.stdout


def test_eval_maps_another_files_columns_and_prints_the_confusion_matrix(tmp_path, run):
    run = Path(shutil.copytree(run, tmp_path / "run"))
    data = tmp_path / "holdout.csv"  # other column names, labels as indices into the run's labels
    data.write_text("id;body;gold\n1;good great;1\n2;bad awful;0\n3;love it;1\n4;hate it;0\n5;great love;1\n")
    out = cli("eval", str(run), "--data", str(data), "--text-column", "body", "--label-column", "gold",
              "--set", "data.label_encoding=index", "data.delimiter=;", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-1500:]
    metrics = yaml.safe_load((run / "metrics" / "eval-holdout.json").read_text())
    assert metrics["n"] == 5 and sum(map(sum, metrics["confusion_matrix"])) == 5
    assert metrics["per_class"]["positive"]["support"] == 3
    table = out.stdout.split("confusion matrix\n")[1].splitlines()
    assert table[0].split() == ["true", "/", "pred", "negative", "positive"]
    assert [int(v) for v in table[2].split()[1:]] == metrics["confusion_matrix"][1]  # the positive row
    assert "evaluate eval-holdout" in out.stderr  # a progress bar on long files

    unmapped = cli("eval", str(run), "--data", str(data), cwd=tmp_path)
    one_line_error(unmapped, "text")
    outside = cli("eval", str(run), "--data", str(data), "--set", "train.lr=1", cwd=tmp_path)
    one_line_error(outside, "--set train.lr=1", "data.*")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
@pytest.mark.parametrize("command", ["eval", "predict", "export", "serve"])
def test_damaged_adapter_weights_are_one_line_naming_the_file(tmp_path, run, damage, command):
    run = Path(shutil.copytree(run, tmp_path / "run"))
    weights = run / "model" / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a safetensors file" * 40)
    (tmp_path / "d.csv").write_text("text,label\ngood,positive\nbad,negative\n")
    args = {"eval": ["eval", str(run), "--data", str(tmp_path / "d.csv")], "predict": ["predict", str(run), "good"],
            "export": ["export", str(run)], "serve": ["serve", str(run), "--port", "0"]}[command]
    one_line_error(cli(*args, cwd=tmp_path), str(weights), "damaged weights file")


def test_damaged_full_weights_and_onnx_graph_are_one_line(tmp_path):
    run = make_tiny_run(tmp_path, method="full", task="binary")
    weights = run / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    one_line_error(cli("predict", str(run), "good", cwd=tmp_path), str(weights), "damaged weights file")
    (run / "onnx").mkdir()
    (run / "onnx" / "model.onnx").write_bytes(b"\x08\x07garbage")
    shutil.copy(run / "model" / "tokenizer.json", run / "onnx" / "tokenizer.json")
    one_line_error(cli("predict", str(run), "good", "--backend", "onnx", cwd=tmp_path),
                   str(run / "onnx" / "model.onnx"), "damaged ONNX graph")
