"""Several server processes (`distilora serve --workers N`): uvicorn starts N workers, each builds its own app (engine
and micro-batcher) from settings it inherits through the environment, and Prometheus metrics are summed over the
workers through prometheus-client's multiprocess mode, so /metrics counts every request whichever worker answers.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI
from pydantic import BaseModel

SETTINGS_ENV = "DISTILORA_SERVE_SETTINGS"
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable


class ServeSettings(BaseModel):
    """Everything create_app needs, as JSON a worker process can read back."""

    run: str
    backend: str = "torch"
    threads: Optional[int] = None
    limits: dict[str, int]
    micro_batch_ms: float = 5.0
    allowed_hosts: list[str]
    token_file: Optional[str] = None  # the file, not the token: settings travel in the environment of the workers

    def app(self) -> FastAPI:
        from distilora.serving.app import Limits, create_app

        token = Path(self.token_file).read_text(encoding="utf-8").strip() if self.token_file else None
        return create_app(self.run, backend=self.backend, threads=self.threads, limits=Limits(**self.limits),
                          micro_batch_ms=self.micro_batch_ms, allowed_hosts=self.allowed_hosts, token=token)


def app_from_environment() -> FastAPI:
    """uvicorn's app factory in each worker process."""
    return ServeSettings.model_validate_json(os.environ[SETTINGS_ENV]).app()


@contextmanager
def shared_metrics_dir() -> Iterator[str]:
    """A fresh folder for the workers' metric files, set before they start and removed after they stop."""
    folder = tempfile.mkdtemp(prefix="distilora-metrics-")
    before = os.environ.get(METRICS_ENV)
    os.environ[METRICS_ENV] = folder
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(METRICS_ENV, None)
        else:
            os.environ[METRICS_ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


def metrics_exposition(own: Any) -> bytes:
    """The text /metrics returns: this process's registry, or every worker's values summed when they share a
    metrics folder."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    if not os.environ.get(METRICS_ENV):
        return generate_latest(own)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
