"""Which engines `distilora serve` accepts with micro-batching: only those whose scores do not move with the batch."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from fastapi.testclient import TestClient

from distilora.errors import ConfigError
from distilora.serving.app import create_app
from runs import free_port, make_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("engines"), method="full", task="binary")


def test_a_bf16_engine_is_served_only_without_micro_batching(run):
    """bf16 scores move with their batch: micro-batching would make one client's scores depend on another's."""
    with pytest.raises(ConfigError, match="serve it with --micro-batch-ms 0"):
        create_app(run, backend="torch-bf16", micro_batch_ms=5)
    out = subprocess.run([sys.executable, "-m", "distilora.cli", "serve", str(run), "--port", str(free_port()),
                          "--backend", "torch-bf16"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--backend torch-bf16 with --micro-batch-ms 5" in out.stderr
    assert "Traceback" not in out.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # where the CPU has no native bf16, the engine says so and runs fp32
        served = TestClient(create_app(run, backend="torch-bf16", micro_batch_ms=0))
    assert served.post("/v1/predict", json={"texts": ["fine"]}).status_code == 200
