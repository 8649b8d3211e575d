"""`distilora ship` on tiny models: teacher (tiny MPNet) -> targets -> two students (tiny BERT, all layers and
first-1) -> ONNX exports -> comparison; killed in the student stage and continued by running the same command."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from distilora.cpu_bf16 import native_bf16
from distilora.runfolder import RunFolder, ShipFolder
from distilora.training.checkpoint import latest_checkpoint
from test_train_e2e import ENV, tiny_raw
from tinymodels import write_tiny_backbone, write_tiny_reviews


def _ship_config(tmp_path: Path) -> Path:
    write_tiny_backbone(tmp_path / "teacher-backbone", layers=2, model_type="mpnet")
    raw = tiny_raw(tmp_path, rows=240, epochs=6, checkpoint_every=2)
    raw["output_dir"] = str(tmp_path / "ship")
    raw["distill"] = {"alpha": 0.5, "unlabeled": str(write_tiny_reviews(tmp_path / "pool.csv", 80, seed=5))}
    raw["ship"] = {"teacher_backbone": str(tmp_path / "teacher-backbone"), "teacher_set": ["train.epochs=10"],
                   "students": ["all", "first-1"], "export": ["onnx", "onnx-int8"]}
    path = tmp_path / "ship.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _ship(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distilora.cli", "ship", str(config), *args], cwd=config.parent,
                          env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_ship_runs_every_stage_and_resumes_after_a_kill(tmp_path):
    config = _ship_config(tmp_path)
    folder = ShipFolder(tmp_path / "ship")
    first = _ship(config, "--stop-after", "teacher")
    assert first.returncode == 0, first.stderr[-2000:]
    assert RunFolder(folder.teacher_dir).info().backbone.endswith("teacher-backbone")
    assert not folder.student_dir("all").exists()

    proc = subprocess.Popen([sys.executable, "-m", "distilora.cli", "ship", str(config)], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = Path(str(folder.student_dir("all")) + ".partial") / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if latest_checkpoint(checkpoints) is not None:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the student finished before it could be killed"

    done = _ship(config)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{folder.teacher_dir}: finished already, reused" in done.stdout
    assert f"{folder.student_dir('all')}: resuming" in done.stdout
    summary = json.loads(folder.ship_json.read_text())
    engines = {(row["run"], row["engine"]) for row in summary["models"]}
    refused = {(line.split()[0], line.split()[1].rstrip(":")) for line in summary["exports_refused"]}
    bf16 = {"torch-bf16"} if native_bf16() else set()  # timed where the CPU has it
    expected = {("teacher", engine) for engine in {"torch"} | bf16} | {
        (student, engine) for student in ("student", "student-first-1")
        for engine in {"torch", "onnx", "onnx-fused", "onnx-int8"} | bf16}
    assert engines == expected - refused  # an int8 graph that fails its accuracy check is left out, and said
    assert not {engine for _, engine in refused} - {"onnx-int8"}
    assert all(row["samples_per_s_batch32"] > 0 and row["split"] == "test" for row in summary["models"])
    assert folder.comparison_png.stat().st_size > 5_000
    sure = folder.comparison_md.read_text().split("## How sure")[1]  # each student against its teacher, paired
    verdicts = {line.split(" | ")[0].strip("| "): line.split(" | ")[-1].strip(" |") for line in sure.splitlines()
                if line.startswith("| student") and " | accuracy | " in line}
    assert set(verdicts) == {"student", "student-first-1"}
    assert set(verdicts.values()) <= {"ahead", "behind", "within noise"}
    assert RunFolder(folder.student_dir("first-1")).info().student_layers == [0]
    peaks = summary["peak_rss_mb_per_stage"]  # per stage, not the process's running maximum
    assert set(peaks) == {"teacher", "targets", "students", "export"} and all(p > 0 for p in peaks.values())
    assert peaks["students"] >= max(RunFolder(folder.student_dir(s)).info().peak_rss_mb for s in ("all", "first-1"))

    more = _ship(config, "--set", "ship.students=[all]", "--stop-after", "students")
    assert more.returncode == 0 and "reused" in more.stdout, more.stderr[-2000:]  # other students keep the teacher
    changed = _ship(config, "--set", "ship.teacher_set=[train.epochs=3]")
    assert changed.returncode == 2
    assert "teacher: finished with another config (train.epochs: 10.0 -> 3.0)" in changed.stderr
