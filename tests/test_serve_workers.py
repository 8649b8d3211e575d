"""`distilora serve --workers N`: N processes behind one port, each with its own engine, and one /metrics that counts
the requests of every worker (prometheus-client's multiprocess mode)."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest

from runs import free_port, make_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("workers"), method="full", task="binary")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_two_workers_answer_on_one_port_and_metrics_count_every_request(run):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "distilora.cli", "serve", str(run), "--port", str(port),
                               "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        ready = 0
        while ready < 2:  # both workers load their model; each answers /readyz once it has
            try:
                ready = sum(httpx.get(f"{base}/readyz", timeout=2).status_code == 200 for _ in range(4))
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        workers = _children(server.pid)  # uvicorn's supervisor starts the workers as its children
        answered_by = set()
        for i in range(30):  # a fresh connection each time, so the kernel can hand it to either worker
            with httpx.Client(base_url=base, timeout=10) as client:
                assert client.post("/v1/predict", json={"text": f"good {i}"}).status_code == 200
                answered_by.add(client.get("/readyz").json()["pid"])
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        counted = re.search(r'distilora_requests_total\{path="/v1/predict",status="200"\} ([0-9.]+)', metrics)
        assert counted and float(counted.group(1)) == 30  # summed over both workers
        assert answered_by <= set(workers) and len(workers) >= 2
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    assert "with 2 workers x" in server.stdout.read()
