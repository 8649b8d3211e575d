"""Multi-node training proven on loopback: two `accelerate launch` processes, each started as its own machine
(--num_machines 2, --machine_rank 0 and 1, rendezvous at 127.0.0.1), train one tiny run together. Two machines
with one process each are the same two ranks as one machine with two processes, so the runs must agree to float
noise. These are the commands a cluster runs on each node (README, "Scale out")."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from distilora.runfolder import RunFolder
from test_train_e2e import ENV, tiny_raw

LAUNCHER = Path(sys.executable).parent / "accelerate"
pytestmark = pytest.mark.skipif(shutil.which("accelerate", path=str(LAUNCHER.parent)) is None,
                                reason="accelerate launcher not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(config: Path, *, machines: int, rank: int = 0, port: int | None = None) -> list[str]:
    """Accelerate's torchrun launcher (--multi_gpu), which also runs on machines without GPUs."""
    where = ["--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)] \
        if machines > 1 else []
    return [str(LAUNCHER), "launch", "--multi_gpu", "--num_machines", str(machines), "--num_processes", "2", *where,
            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "distilora.cli", "train", str(config)]


def test_two_machines_on_loopback_train_the_same_run_as_two_processes_on_one(tmp_path):
    raw = tiny_raw(tmp_path, rows=240, epochs=4, batch_size=16)
    for name in ("nodes", "one_machine"):
        raw["output_dir"] = str(tmp_path / name)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    port = _free_port()
    nodes = [subprocess.Popen(launch(tmp_path / "nodes.yaml", machines=2, rank=rank, port=port), cwd=tmp_path,
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    try:
        outputs = [node.communicate(timeout=600) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for rank, (node, (_, err)) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f"machine {rank}:\n{err[-3000:]}"
    one = subprocess.run(launch(tmp_path / "one_machine.yaml", machines=1), cwd=tmp_path, env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]

    nodes_run, one_run = RunFolder(tmp_path / "nodes"), RunFolder(tmp_path / "one_machine")
    assert nodes_run.info().processes == one_run.info().processes == 2
    assert not (tmp_path / "nodes.partial").exists()
    assert [h["step"] for h in nodes_run.history()] == [h["step"] for h in one_run.history()]
    np.testing.assert_allclose([h["val_loss"] for h in nodes_run.history()],
                               [h["val_loss"] for h in one_run.history()], atol=1e-5)
    assert nodes_run.metrics("test")["accuracy"] == one_run.metrics("test")["accuracy"]


def test_accelerate_cpu_launch_that_would_train_alone_is_refused(tmp_path):
    raw = tiny_raw(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    done = subprocess.run([str(LAUNCHER), "launch", "--cpu", "--num_processes", "2", "--mixed_precision", "no",
                           "--dynamo_backend", "no", "-m", "distilora.cli", "train", str(tmp_path / "c.yaml")],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "accelerate launch --cpu started a single process" in done.stderr
    assert "torchrun --nproc_per_node" in done.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
