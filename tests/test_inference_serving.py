"""Inference, export and serving on a tiny trained run: same answers from every engine, exports that check
themselves, an API that bounds every input, and the web page in a real browser."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from distilora.config import build_config
from distilora.errors import ExportError, RunFolderError
from distilora.inference.classifier import Classifier
from distilora.inference.export import export_run
from distilora.serving.app import Limits, create_app
from distilora.training.runner import train
from test_train_e2e import tiny_raw

TEXTS = ["good great app", "bad awful service", "the movie was fine but sad", "love it", "terrible broken product"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A small LoRA run, exported to merged weights and ONNX once for the whole module."""
    base = tmp_path_factory.mktemp("serving")
    path = train(build_config(tiny_raw(base, method="full", epochs=6)))
    export_run(path, "onnx")
    return path


def test_engines_agree(run):
    torch_clf = Classifier.load(run)
    onnx_clf = Classifier.load(run, backend="onnx")
    a, b = torch_clf.predict_proba(TEXTS), onnx_clf.predict_proba(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert [p.label for p in torch_clf.predict(TEXTS)] == [p.label for p in onnx_clf.predict(TEXTS)]
    single = torch_clf.predict("good great app")[0]
    assert set(single.scores) == {"negative", "positive"} and abs(sum(single.scores.values()) - 1) < 1e-5


def test_stream_keeps_order_and_matches_batch(run):
    clf = Classifier.load(run)
    texts = [TEXTS[i % len(TEXTS)] + " " * (i % 3) + "really" * (i % 4) for i in range(101)]
    streamed = list(clf.predict_stream(iter(texts), batch_size=8, chunk=16))
    batched = clf.predict(texts)
    assert [p.scores for p in streamed] == [p.scores for p in batched]


def test_onnx_path_does_not_import_torch(run):
    code = (f"import sys; from distilora.inference.classifier import Classifier; "
            f"c = Classifier.load({str(run)!r}, backend='onnx'); c.predict(['good']); "
            f"print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "False"


def test_missing_export_and_bad_backend_are_clear(tmp_path, run):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "onnx")
    with pytest.raises(RunFolderError, match="not exported yet; run `distilora export .* --format onnx-int8`"):
        Classifier.load(copy, backend="onnx-int8")
    with pytest.raises(RunFolderError, match="not one of torch, onnx, onnx-int8"):
        Classifier.load(copy, backend="tensorrt")


def test_export_refuses_and_leaves_nothing_behind(tmp_path, run):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = sorted(p.name for p in (copy / "onnx").iterdir())
    with pytest.raises(ExportError, match="export refused"):
        export_run(copy, "onnx-int8", max_drop=-1.0)  # any result fails a negative bound
    assert sorted(p.name for p in (copy / "onnx").iterdir()) == before
    assert not [p for p in copy.iterdir() if p.name.startswith(".onnx")]  # no staging folder left
    report = json.loads((copy / "onnx" / "export.json").read_text())["onnx"]
    assert report["max_abs_logit_diff"] < 1e-3 and set(report["timings"]) == {"torch", "onnx"}


def test_merged_export_is_a_plain_transformers_folder(tmp_path):
    path = train(build_config(tiny_raw(tmp_path, epochs=1)))
    export_run(path, "merged")
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path / "merged")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    lora = Classifier.load(path)  # now loads merged/
    rows = [json.loads(line) for line in (path / "predictions" / "test.jsonl").read_text().splitlines()][:5]
    np.testing.assert_allclose(lora.predict_logits([r["text"] for r in rows]), [r["logits"] for r in rows], atol=1e-4)


def test_predict_cli_one_text_and_file(tmp_path, run):
    env_py = [sys.executable, "-m", "distilora.cli"]
    one = subprocess.run([*env_py, "predict", str(run), "good great app"], capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-1000:]
    assert json.loads(one.stdout)["label"] in ("negative", "positive")
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(TEXTS) + "\n")
    out = tmp_path / "out.jsonl"
    done = subprocess.run([*env_py, "predict", str(run), "--input", str(source), "--output", str(out), "--backend", "onnx"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS
    bad = subprocess.run([*env_py, "predict", str(run), "--input", str(tmp_path / "none.csv"), "--output", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "none.csv" in bad.stderr and "Traceback" not in bad.stderr
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == TEXTS  # old output untouched


LIMITS = Limits(max_chars=40, max_texts=3, max_body_bytes=2_000, max_file_rows=4)


@pytest.fixture(scope="module")
def client(run):
    with TestClient(create_app(run, limits=LIMITS)) as c:
        yield c


def test_api_predicts_and_describes_the_model(client):
    one = client.post("/v1/predict", json={"text": "good great app"})
    assert one.status_code == 200
    body = one.json()
    assert body["model"] == "run" and len(body["predictions"]) == 1
    many = client.post("/v1/predict", json={"texts": TEXTS[:3]}).json()["predictions"]
    assert len(many) == 3 and many[0]["label"] == body["predictions"][0]["label"]
    assert many[0]["scores"] == pytest.approx(body["predictions"][0]["scores"], abs=1e-5)  # padding moves the 6th digit
    card = client.get("/v1/model").json()
    assert card["labels"] == ["negative", "positive"] and card["task"] == "binary" and "test" in card["metrics"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("body, status, says", [
    ({"text": "x" * 41}, 422, "at most 40 characters"),
    ({"texts": ["a"] * 4}, 422, "at most 3 items"),
    ({"texts": ["ok", "y" * 41]}, 422, "at most 40 characters"),
    ({}, 422, "exactly one of 'text' or 'texts'"),
    ({"text": "a", "texts": ["b"]}, 422, "exactly one of 'text' or 'texts'"),
    ({"text": ""}, 422, "at least 1 character"),
    ({"text": 5}, 422, "valid string"),
    ([1, 2], 422, "valid dictionary"),
])
def test_api_limits_and_bad_bodies_are_4xx_that_say_why(client, body, status, says):
    response = client.post("/v1/predict", json=body)
    assert response.status_code == status and says in json.dumps(response.json())


def test_api_body_size_and_malformed_json(client):
    big = client.post("/v1/predict", content=b'{"text": "' + b"a" * 3000 + b'"}', headers={"content-type": "application/json"})
    assert big.status_code == 413 and "max_body_bytes" in big.json()["detail"]
    broken = client.post("/v1/predict", content=b'{"text": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422


def test_api_file_upload_and_its_limits(client):
    ok = client.post("/v1/predict-file", files={"file": ("a.csv", b"text\ngood app\nbad app\n")})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2 and ok.json()["texts"] == ["good app", "bad app"]
    jsonl = client.post("/v1/predict-file", files={"file": ("a.jsonl", b'{"text": "good"}\n{"text": "bad"}\n')})
    assert jsonl.status_code == 200
    for name, content, status, says in [("a.csv", b"body\nx\n", 400, "'text' column"),
                                        ("a.csv", b"text\n" + b"a\n" * 5, 413, "max_file_rows"),
                                        ("a.jsonl", b'{"text": 1}\n', 400, "line 1"),
                                        ("a.txt", b"hello", 400, ".csv"),
                                        ("a.csv", b"text\n" + b"z" * 50 + b"\n", 413, "max_chars")]:
        response = client.post("/v1/predict-file", files={"file": (name, content)})
        assert response.status_code == status and says in response.json()["detail"], (name, response.text)


def test_micro_batching_gives_the_same_answers_as_single_calls(run):
    app = create_app(run, micro_batch_ms=20)
    clf = Classifier.load(run)
    expected = [p.scores for p in clf.predict(TEXTS)]

    async def fire():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            responses = await asyncio.gather(*[c.post("/v1/predict", json={"text": t}) for t in TEXTS * 4])
        return [r.json()["predictions"][0]["scores"] for r in responses]

    got = asyncio.run(fire())
    for i, scores in enumerate(got):
        for name, value in scores.items():
            assert value == pytest.approx(expected[i % len(TEXTS)][name], abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(run):
    """A real uvicorn server on loopback, stopped at the end of the module."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(run, limits=LIMITS), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_real_http_server(live_server):
    with httpx.Client(base_url=live_server, timeout=10) as c:
        assert c.get("/healthz").status_code == 200
        assert c.post("/v1/predict", json={"text": "good great app"}).status_code == 200
        assert c.post("/v1/predict", json={"text": "x" * 41}).status_code == 422


def test_openapi_fuzz_never_gives_a_5xx(run):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(run, limits=LIMITS))
    failures = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            if response.status_code >= 500:
                failures.append((op.path, case.body, response.status_code))

        from hypothesis import given

        given(op.as_strategy())(check)()
    assert not failures, failures[:3]


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (the Makefile installs it with apt)")
def test_web_page_in_a_real_browser(live_server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(live_server + "/")
        page.wait_for_function("document.querySelectorAll('#card tr').length > 0")
        page.fill("#text", "good great app")
        page.wait_for_function("document.querySelectorAll('#bars .bar').length == 2")
        assert page.inner_text("#label") in ("negative", "positive")
        upload = tmp_path / "texts.csv"
        upload.write_text("text\ngood app\nbad app\n")
        page.set_input_files("#file", str(upload))
        page.click("#upload")
        page.wait_for_function("document.querySelectorAll('#results tr').length == 3")
        assert "bad app" in page.inner_text("#results")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert not errors, errors
