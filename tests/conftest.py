"""Shared fixtures."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# teacher logits are cached per user between runs; tests (and the CLI processes they start) get their own folder
os.environ["DISTILORA_CACHE"] = tempfile.mkdtemp(prefix="distilora-test-cache-")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the test-only teacher-logit cache, so test runs leave nothing behind in the temp folder."""
    shutil.rmtree(os.environ["DISTILORA_CACHE"], ignore_errors=True)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark data (../shared/data); tests that need it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED_DATA}; real-data tests need the shared benchmark data")
    return SHARED_DATA
