"""Experiment tracking (train.report_to) read back for real: TensorBoard event files in the run folder and a local
MLflow store (SQLite, MLflow 3's local default; its file store now refuses new runs), each holding the config,
per-step losses and learning rate, and the final metrics."""
from __future__ import annotations

import pytest

from distilora.config import build_config
from distilora.errors import ConfigError
from distilora.runfolder import RunFolder
from distilora.training.runner import train
from distilora.training.tracking import flat_params
from test_train_e2e import tiny_raw

pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install 'distilora[track]'")
pytest.importorskip("mlflow", reason="mlflow not installed: pip install 'distilora[track]'")


def test_tensorboard_and_mlflow_read_back_config_losses_and_metrics(tmp_path, monkeypatch):
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # MLflow 3's local store
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    raw = tiny_raw(tmp_path, epochs=2, report_to=["tensorboard", "mlflow"])
    run = train(build_config(raw))
    folder = RunFolder(run)
    steps = folder.history()[-1]["step"]  # the last optimizer step is always evaluated
    test_metrics = folder.metrics("test")

    event_dirs = {p.parent for p in folder.logs_dir.rglob("events.out.tfevents.*")}
    assert event_dirs, "TensorBoard event files are kept in the run folder"
    scalars: dict[str, list] = {}
    for directory in event_dirs:
        events = EventAccumulator(str(directory)).Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(events.Scalars(tag))
    assert len(scalars["train/loss"]) == steps and len(scalars["train/lr"]) == steps
    assert [e.step for e in scalars["val/f1"]] == [h["step"] for h in folder.history()]
    assert scalars["test/f1"][0].value == pytest.approx(test_metrics["f1"], abs=1e-6)

    client = mlflow.tracking.MlflowClient()
    [experiment] = client.search_experiments(filter_string="name = 'tiny'")
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.data.params["train.lr"] == str(raw["train"]["lr"]) and logged.data.params["peft.r"] == "4"
    assert logged.data.tags["mlflow.runName"] == "tiny" and logged.info.status == "FINISHED"
    assert len(client.get_metric_history(logged.info.run_id, "train/loss")) == steps
    assert logged.data.metrics["test/accuracy"] == pytest.approx(test_metrics["accuracy"], abs=1e-6)


def test_a_tracker_that_is_not_installed_fails_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    raw = tiny_raw(tmp_path, report_to=["wandb"])
    with pytest.raises(ConfigError, match=r"train.report_to: wandb is not installed; pip install wandb"):
        train(build_config(raw))
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


def test_an_unknown_tracker_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="train.report_to"):
        build_config({"train": {"report_to": ["tensorbord"]}})


def test_flat_params_keeps_scalars_and_writes_the_rest_as_text():
    assert flat_params({"train": {"lr": 5e-4, "report_to": ["mlflow"]}, "data": {"labels": None, "header": True}}) == {
        "train.lr": 5e-4, "train.report_to": "['mlflow']", "data.labels": "None", "data.header": True}


def test_turning_tracking_on_does_not_make_a_finished_run_another_run(tmp_path):
    from distilora.training.runner import finished_run

    raw = tiny_raw(tmp_path, epochs=1)
    train(build_config(raw))
    raw["train"]["report_to"] = ["tensorboard"]
    assert finished_run(build_config(raw), "redo")
    raw["train"]["lr"] = 0.5
    with pytest.raises(ConfigError, match="train.lr"):
        finished_run(build_config(raw), "redo")
