"""`distilora push`: what goes to the Hub (decided by huggingface_hub's own pattern filter), what never does, and the
one-line errors. No network here: HfApi's two calls are replaced by recorders; the real upload is untested offline."""
from __future__ import annotations

from pathlib import Path

import pytest

from distilora.errors import DistiloraError
from distilora.hub import NEVER_PUSHED, push_run
from distilora.reporting.model_card import write_model_cards
from runs import make_tiny_run, run_cli


@pytest.fixture
def recorded(monkeypatch):
    from huggingface_hub import HfApi

    calls: dict = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("create", (repo_id, kw)))

    def upload_folder(self, **kw):
        calls["upload"] = kw
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{kw['repo_id']}/commit/abc"})()
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _uploaded_files(folder: Path, ignore: list[str]) -> set[str]:
    from huggingface_hub.utils import filter_repo_objects

    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return set(filter_repo_objects(files, ignore_patterns=ignore))


def test_push_uploads_the_run_folder_but_never_checkpoints_or_temporary_files(tmp_path, recorded, monkeypatch,
                                                                             capsys):
    run = make_tiny_run(tmp_path, "lora")
    write_model_cards(run)
    (run / "checkpoints" / "step-00000010").mkdir(parents=True)
    (run / "checkpoints" / "step-00000010" / "optimizer.safetensors").write_bytes(b"x")
    (run / "metrics" / ".validation.json.tmp").write_text("{}")
    code, out, err = run_cli(monkeypatch, capsys, "push", str(run), "me/tiny-classifier", "--private")
    assert code == 0, err
    assert "https://huggingface.co/me/tiny-classifier/commit/abc" in out
    assert recorded["create"] == ("me/tiny-classifier", {"private": True, "exist_ok": True})
    upload = recorded["upload"]
    assert Path(upload["folder_path"]) == run and upload["ignore_patterns"] == NEVER_PUSHED
    sent = _uploaded_files(run, upload["ignore_patterns"])
    assert {"README.md", "run.json", "config.yaml", "model/adapter_config.json", "model/adapter_model.safetensors",
            "model/README.md", "metrics/validation.json"} <= sent
    assert not [f for f in sent if f.startswith("checkpoints/") or f.endswith(".tmp")]


def test_push_refuses_an_unfinished_run_or_one_without_a_card_before_any_network_call(tmp_path, recorded):
    run = make_tiny_run(tmp_path, "full")
    with pytest.raises(DistiloraError, match="no model card"):
        push_run(run, "me/x")
    with pytest.raises(DistiloraError, match="run folder not found"):
        push_run(tmp_path / "nope", "me/x")
    assert recorded == {}


def test_an_unreachable_hub_is_one_line(tmp_path, monkeypatch, capsys):
    """A real call to a Hub endpoint where nothing listens: the HTTP client's own connection error (httpx2's, not an
    OSError, in huggingface_hub 2.x) becomes the one-line error, with no traceback."""
    import socket

    from huggingface_hub import constants

    with socket.socket() as probe:  # a local port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    run = make_tiny_run(tmp_path, "full")
    write_model_cards(run)
    capsys.readouterr()  # the tiny run's own progress output
    code, _, err = run_cli(monkeypatch, capsys, "push", str(run), "me/x", "--token", "hf_test")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "push to me/x failed: " in err and "; check the network" in err
