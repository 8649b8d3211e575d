"""Experiment tracking through Accelerate's trackers (train.report_to): TensorBoard, MLflow, W&B and the others.

Accelerate already speaks to every tracker; distilora only names what to log. The config goes in once as flat
parameters ("train.lr": 0.0005), each optimizer step logs train/loss, train/lr and train/samples_per_s, each
evaluation logs val/<metric>, and the finished run logs <split>/<metric> for validation and test. With
train.report_to empty, Accelerate's log calls do nothing.
"""
from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from distilora.config import RunConfig
from distilora.errors import ConfigError

if TYPE_CHECKING:
    from accelerate import Accelerator

# the module each tracker imports, and the package that provides it
_MODULES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny"),
            "wandb": ("wandb", "wandb"), "comet_ml": ("comet_ml", "comet-ml"), "aim": ("aim", "aim"),
            "clearml": ("clearml", "clearml"), "dvclive": ("dvclive", "dvclive"), "swanlab": ("swanlab", "swanlab"),
            "trackio": ("trackio", "trackio")}


def check_trackers(cfg: RunConfig) -> None:
    """Every tracker in train.report_to is installed (Accelerate would otherwise drop it with only a log line)."""
    for name in cfg.train.report_to:
        module, package = _MODULES[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"train.report_to: {name} is not installed; pip install {package} "
                              f"(or pip install 'distilora[track]' for tensorboard and mlflow), or remove it")


def flat_params(raw: dict[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """{'train': {'lr': 5e-4}} -> {'train.lr': 5e-4}: the scalar types every tracker accepts as a parameter."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return flat


def start_tracking(accelerator: "Accelerator", cfg: RunConfig) -> None:
    """Open the run in each tracker with the resolved config as its parameters; nothing when none is set."""
    if cfg.train.report_to:
        accelerator.init_trackers(cfg.name, config=flat_params(cfg.model_dump(mode="json")),
                                  init_kwargs={"mlflow": {"run_name": cfg.name}})


def log_split_metrics(accelerator: "Accelerator", split: str, metrics: dict[str, Any], step: int) -> None:
    """The numbers of one split as <split>/<metric> (per-class tables and matrices stay in the run folder)."""
    accelerator.log({f"{split}/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=step)


def finish_tracking(accelerator: "Accelerator") -> None:
    """Close every tracker (main process). Not Accelerator.end_training: that also destroys the process group, which
    a sweep or notebook running several trainings under one distributed launch still needs."""
    for tracker in accelerator.trackers:
        tracker.finish()
