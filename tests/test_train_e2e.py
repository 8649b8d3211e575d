"""Training end to end on tiny random-weight models: the run folder contract, reloading (PEFT head included),
every task type, resume after a kill, and 2-process data-parallel training under `accelerate launch`."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from distilora import cpu_bf16
from distilora.config import build_config
from distilora.errors import DistiloraWarning
from distilora.modeling.loading import load_run_model
from distilora.runfolder import RunFolder
from distilora.training.accelerator import make_accelerator
from distilora.training.checkpoint import latest_checkpoint
from distilora.training.runner import train
from runs import logits_of
from tinymodels import write_tiny_backbone, write_tiny_reviews

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "TOKENIZERS_PARALLELISM": "false"}


def tiny_raw(tmp_path: Path, *, task: str = "binary", method: str = "lora", rows: int = 160, **train) -> dict:
    backbone = tmp_path / "backbone"
    if not backbone.exists():
        write_tiny_backbone(backbone)
    data = write_tiny_reviews(tmp_path / f"{task}.csv", rows, task=task)
    return {
        "name": "tiny", "output_dir": str(tmp_path / "run"),
        "data": {"train": str(data), "validation_fraction": 0.25, "test_fraction": 0.2, "max_length": 32,
                 **({"label_column": ["pos", "neg"]} if task == "multilabel" else {})},
        "model": {"backbone": str(backbone), "method": method},
        "peft": {"r": 4, "alpha": 8},
        "train": {"epochs": 4, "batch_size": 8, "lr": 5e-3 if method != "full" else 1e-3, "checkpoint_every": 5,
                  "threads": 1, **train},
        "eval": {"report": False},
    }


def test_lora_run_folder_is_complete_and_reloads_with_its_trained_head(tmp_path):
    run = train(build_config(tiny_raw(tmp_path)))
    folder = RunFolder(run)
    assert not (tmp_path / "run.partial").exists()
    for name in ("run.json", "config.yaml", "history.jsonl", "data_summary.json", "metrics/validation.json",
                 "metrics/test.json", "predictions/test.jsonl", "model/adapter_config.json",
                 "model/adapter_model.safetensors", "model/tokenizer.json"):
        assert (run / name).is_file(), name
    assert not (run / "checkpoints").exists()
    info = folder.info()
    assert info.task == "binary" and info.labels == ["negative", "positive"] and info.method == "lora"
    assert 0 < info.trainable_params < info.total_params and info.thresholds and len(info.thresholds) == 1
    assert 50 < info.peak_rss_mb < 20_000  # MiB: the process's own peak, torch and the tiny model included
    assert yaml.safe_load(folder.config_yaml.read_text())["peft"]["r"] == 4
    history = folder.history()
    assert [h["step"] for h in history] == sorted(h["step"] for h in history) and len(history) == 4
    assert folder.metrics("test")["n"] == len(folder.predictions("test")) == 32

    # the standard PEFT way of loading the adapter gives back the trained head, not a random one
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = AutoModelForSequenceClassification.from_pretrained(tmp_path / "backbone", num_labels=2)
    model = PeftModel.from_pretrained(base, run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    rows = folder.predictions("test")[:5]
    with torch.no_grad():
        for row in rows:
            logits = model(**tokenizer(row["text"], return_tensors="pt")).logits[0].numpy()
            np.testing.assert_allclose(logits, row["logits"], atol=1e-4)


def test_dora_run_saves_its_magnitudes_and_reloads_merged_and_unmerged(tmp_path):
    raw = tiny_raw(tmp_path, epochs=2)
    raw["peft"]["use_dora"] = True
    run = train(build_config(raw))
    assert json.loads((run / "model" / "adapter_config.json").read_text())["use_dora"] is True
    with safe_open(run / "model" / "adapter_model.safetensors", "pt") as weights:
        assert any("lora_magnitude_vector" in key for key in weights.keys())
    rows = RunFolder(run).predictions("test")[:6]
    texts, saved = [r["text"] for r in rows], np.array([r["logits"] for r in rows])
    for merge in (True, False):
        model, _ = load_run_model(run, merge=merge)
        np.testing.assert_allclose(logits_of(model, texts, run), saved, atol=1e-4)


@pytest.mark.parametrize("method", ["full", "head"])
def test_full_and_head_runs_save_plain_transformers_folders(tmp_path, method):
    run = train(build_config(tiny_raw(tmp_path, method=method, epochs=8 if method == "full" else 2)))
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    info = RunFolder(run).info()
    assert info.method == method
    if method == "head":
        assert info.trainable_params < info.total_params / 10
    else:
        assert info.trainable_params == info.total_params
        assert RunFolder(run).metrics("test")["accuracy"] >= 0.9  # the loop really learns


def _cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distilora.cli", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def test_bf16_on_cpu_autocasts_the_steps_and_saves_fp32_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: True)  # the bf16 path, whatever this CI machine's CPU
    raw = tiny_raw(tmp_path, method="full", epochs=8, precision="bf16")
    with make_accelerator(build_config(raw)).autocast():
        assert torch.nn.Linear(4, 4)(torch.ones(1, 4)).dtype == torch.bfloat16
    run = train(build_config(raw))
    with safe_open(run / "model" / "model.safetensors", "pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.float32}
    assert RunFolder(run).metrics("test")["accuracy"] >= 0.9  # lower precision steps still learn
    assert RunFolder(run).info().precision == "bf16"


def test_bf16_on_a_cpu_without_it_warns_and_trains_in_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: False)
    with pytest.warns(DistiloraWarning, match="train.precision: bf16: this CPU has no native bf16.*using fp32"):
        accelerator = make_accelerator(build_config(tiny_raw(tmp_path, precision="bf16")))
    assert accelerator.mixed_precision == "no"


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_cli_trains_multiclass_and_multilabel(tmp_path, task):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_raw(tmp_path, task=task, rows=180)))
    out = _cli("train", str(config), "--set", "train.epochs=5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    folder = RunFolder(tmp_path / "run")
    info = folder.info()
    metrics = folder.metrics("test")
    if task == "multiclass":
        assert info.labels == ["negative", "neutral", "positive"] and info.thresholds is None
        assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["n"]
    else:
        assert info.labels == ["pos", "neg"] and len(info.thresholds) == 2
        assert "micro_f1" in metrics and "samples_f1" in metrics
    assert "precision" in out.stdout and "run folder:" in out.stdout


def _train_args(tmp_path: Path, name: str) -> list[str]:
    config = tmp_path / f"{name}.yaml"
    raw = tiny_raw(tmp_path, rows=400, epochs=3, batch_size=4, checkpoint_every=3, eval_every=20)
    raw["output_dir"] = str(tmp_path / name)
    config.write_text(yaml.safe_dump(raw))
    return ["train", str(config)]


def test_resume_after_kill_ends_with_the_same_metrics(tmp_path):
    reference = _cli(*_train_args(tmp_path, "straight"), cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-2000:]

    args = _train_args(tmp_path, "killed")
    proc = subprocess.Popen([sys.executable, "-m", "distilora.cli", *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "killed.partial" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        latest = latest_checkpoint(checkpoints)
        if latest is not None and int(latest.name.removeprefix("step-")) >= 30:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (tmp_path / "killed").exists()  # a killed run never looks complete

    refused = _cli(*args, cwd=tmp_path)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = _cli(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from step" in resumed.stdout + resumed.stderr
    straight, killed = RunFolder(tmp_path / "straight"), RunFolder(tmp_path / "killed")
    for split in ("validation", "test"):
        assert killed.metrics(split) == straight.metrics(split)
    assert [h["val_loss"] for h in killed.history()] == [h["val_loss"] for h in straight.history()]
    from safetensors.torch import load_file

    a = load_file(str(straight.model_dir / "adapter_model.safetensors"))
    b = load_file(str(killed.model_dir / "adapter_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate launcher not installed")
def test_two_process_accelerate_launch_matches_single_process(tmp_path):
    raw = tiny_raw(tmp_path, rows=240, epochs=4, batch_size=16)
    raw["train"]["threads"] = 1
    for name in ("single", "ddp"):
        raw["output_dir"] = str(tmp_path / name)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    single = _cli("train", str(tmp_path / "single.yaml"), cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-2000:]
    launcher = str(Path(sys.executable).parent / "accelerate")
    ddp = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "distilora.cli", "train",
                          str(tmp_path / "ddp.yaml")], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert RunFolder(tmp_path / "ddp").info().processes == 2  # really two ranks in one process group, not two runs
    one, two = RunFolder(tmp_path / "single").metrics("test"), RunFolder(tmp_path / "ddp").metrics("test")
    assert abs(one["accuracy"] - two["accuracy"]) <= 0.05
    assert abs(one["log_loss"] - two["log_loss"]) <= 0.1
    assert len(RunFolder(tmp_path / "ddp").history()) == len(RunFolder(tmp_path / "single").history())


@pytest.mark.parametrize("override, says", [
    ("data.train={missing}", "data.train"),
    ("data.text_column=body", "body"),
    ("model.backbone={missing_dir}", "model.backbone"),
    pytest.param("train.precision=fp16", "fp16 needs a CUDA GPU", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="fp16 is valid on a GPU")),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, override, says):
    raw = tiny_raw(tmp_path)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    value = override.format(missing=tmp_path / "nope.csv", missing_dir=tmp_path / "no_model")
    out = _cli("train", str(config), "--set", value, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-1000:]
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1 and says in out.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_saving_an_adapter_recorded_against_a_hub_id_asks_the_hub_nothing(tmp_path, monkeypatch):
    """A named backbone's adapter records its hub id; saving it must not look that id up over the network."""
    import peft.utils.save_and_load as peft_saving

    import distilora.modeling.backbone as backbone

    def no_network(*args, **kwargs):
        raise AssertionError(f"looked up the Hub: {args}")

    monkeypatch.setattr(peft_saving, "check_file_exists_on_hf_hub", no_network)
    monkeypatch.setattr(backbone, "portable_backbone_name", lambda name: "sentence-transformers/all-MiniLM-L6-v2")
    run = train(build_config(tiny_raw(tmp_path, epochs=1)))
    adapter = json.loads((run / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
