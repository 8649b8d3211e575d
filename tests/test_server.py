"""The REST API through real clients: predictions and the model card, every limit and malformed body (always a 4xx
that says why, never a 5xx), file uploads, micro-batching that changes nothing but the batching, a real uvicorn
server, and the `serve` command."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from distilora.inference.classifier import Classifier
from distilora.serving.app import Limits, create_app
from distilora.serving.batcher import MicroBatcher
from runs import free_port, live_server, make_tiny_run

TEXTS = ["good great app", "bad awful service", "the movie was fine but sad", "love it", "terrible broken product"]
LIMITS = Limits(max_chars=40, max_texts=3, max_body_bytes=2_000, max_file_rows=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("server"), method="full", task="binary")


@pytest.fixture(scope="module")
def client(run):
    with TestClient(create_app(run, limits=LIMITS)) as c:
        yield c


def test_predicts_one_or_many_texts_like_the_classifier(client, run):
    expected = Classifier.load(run).predict(TEXTS[:3])
    one = client.post("/v1/predict", json={"text": TEXTS[0]})
    assert one.status_code == 200
    assert one.json()["model"] == "run" and len(one.json()["predictions"]) == 1
    many = client.post("/v1/predict", json={"texts": TEXTS[:3]}).json()["predictions"]
    assert [p["label"] for p in many] == [p.label for p in expected]
    for got, want in zip(many, expected):
        assert got["scores"] == pytest.approx(want.scores, abs=1e-5)  # padding may move the 6th digit
    assert one.json()["predictions"][0]["scores"] == pytest.approx(expected[0].scores, abs=1e-5)


def test_model_card_health_and_schema(client):
    card = client.get("/v1/model").json()
    assert card["labels"] == ["negative", "positive"] and card["task"] == "binary" and card["method"] == "full"
    assert card["thresholds"] == [0.4] and card["backbone"].endswith("backbone")
    assert 0 <= card["metrics"]["validation"]["accuracy"] <= 1 and card["metrics"]["validation"]["n"] == 24
    assert card["limits"] == {"max_chars": 40, "max_texts": 3, "max_body_bytes": 2_000, "max_file_rows": 4}
    assert client.get("/healthz").json() == {"status": "ok"}
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/predict-file", "/v1/model", "/healthz"} <= set(schema["paths"])
    request = schema["components"]["schemas"]["PredictRequest"]["properties"]
    assert json.dumps(request["text"]).count('"maxLength": 40') == 1
    assert '"maxItems": 3' in json.dumps(request["texts"])


@pytest.mark.parametrize("body, says", [
    ({"text": "x" * 41}, "at most 40 characters"),
    ({"texts": ["a"] * 4}, "at most 3 items"),
    ({"texts": ["ok", "y" * 41]}, "at most 40 characters"),
    ({"texts": []}, "at least 1 item"),
    ({}, "exactly one of 'text' or 'texts'"),
    ({"text": "a", "texts": ["b"]}, "exactly one of 'text' or 'texts'"),
    ({"text": ""}, "at least 1 character"),
    ({"text": 5}, "valid string"),
    ({"texts": "not a list"}, "valid list"),
    ([1, 2], "valid dictionary"),
    (None, "Field required"),  # no body at all
])
def test_limits_and_bad_bodies_are_422s_that_say_why(client, body, says):
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 422 and says in json.dumps(response.json()), response.text


@pytest.mark.parametrize("content, content_type", [
    (b'{"text": ', "application/json"),  # cut off
    (b"\xff\xfe{}", "application/json"),  # not UTF-8
    (b'{"text": "ok"}', "text/plain"),  # not declared as JSON
    (b"", "application/json"),
])
def test_malformed_bodies_are_4xx(client, content, content_type):
    response = client.post("/v1/predict", content=content, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500 and "detail" in response.json()


def test_the_body_limit_holds_whether_or_not_the_size_is_declared(client):
    declared = client.post("/v1/predict", content=b'{"text": "' + b"a" * 3000 + b'"}',
                           headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "max_body_bytes=2000" in declared.json()["detail"]

    def chunks():  # no Content-Length: the server has to count while reading
        yield b'{"text": "'
        for _ in range(10):
            yield b"a" * 300
        yield b'"}'

    streamed = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "max_body_bytes" in streamed.json()["detail"]
    upload = client.post("/v1/predict-file", files={"file": ("big.csv", b"text\n" + b"b\n" * 1500)})
    assert upload.status_code == 413 and "max_body_bytes" in upload.json()["detail"]
    assert client.post("/v1/predict", json={"text": "fine"}).status_code == 200  # the server is still well


def test_file_upload_csv_and_jsonl(client, run):
    expected = [p.label for p in Classifier.load(run).predict(["good app", "bad, awful app"])]
    csv_file = client.post("/v1/predict-file", files={"file": ("a.csv", b'text,id\ngood app,1\n"bad, awful app",2\n')})
    assert csv_file.status_code == 200
    assert csv_file.json()["texts"] == ["good app", "bad, awful app"]
    assert [p["label"] for p in csv_file.json()["predictions"]] == expected
    jsonl = client.post("/v1/predict-file", files={"file": ("a.jsonl", b'{"text": "good app"}\n\n{"text": "bad, awful app"}\n')})
    assert jsonl.status_code == 200 and [p["label"] for p in jsonl.json()["predictions"]] == expected


@pytest.mark.parametrize("name, content, status, says", [
    ("a.csv", b"body\nx\n", 400, "needs a 'text' column"),
    ("a.csv", b"text\n" + b"a\n" * 5, 413, "max_file_rows"),
    ("a.csv", b"text\n" + b"z" * 41 + b"\n", 413, "row 1 has 41 characters; the limit is 40 (max_chars)"),
    ("a.csv", b"text\nok\n\"\"\n", 400, "row 2 has an empty text"),
    ("a.csv", b"text\n", 400, "no texts found"),
    ("a.jsonl", b'{"text": 1}\n', 400, "line 1 has no string 'text' field"),
    ("a.jsonl", b'{"text": "ok"}\n{"text": \n', 400, "line 2 is not JSON"),
    ("a.csv", b"text\n\xff\n", 400, "not UTF-8"),
    ("a.txt", b"hello", 400, "upload a .csv"),
])
def test_file_upload_errors_name_the_row_and_the_limit(client, name, content, status, says):
    response = client.post("/v1/predict-file", files={"file": (name, content)})
    assert response.status_code == status and says in response.json()["detail"], response.text


def test_file_upload_reads_the_runs_own_text_column(tmp_path):
    import yaml

    run = make_tiny_run(tmp_path, method="full", task="binary")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["text_column"] = "comment"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with TestClient(create_app(run, limits=LIMITS)) as c:
        ok = c.post("/v1/predict-file", files={"file": ("a.csv", b"id,comment\n1,good app\n2,bad app\n")})
        assert ok.status_code == 200 and ok.json()["texts"] == ["good app", "bad app"]
        wrong = c.post("/v1/predict-file", files={"file": ("a.csv", b"text\ngood\n")})
        assert wrong.status_code == 400 and "needs a 'comment' column" in wrong.json()["detail"]


def test_file_upload_needs_a_file(client):
    assert client.post("/v1/predict-file", data={"other": "x"}).status_code == 422
    assert client.post("/v1/predict-file", json={"text": "x"}).status_code == 422


def test_multilabel_predictions_are_lists_of_labels(tmp_path):
    run = make_tiny_run(tmp_path, method="lora", task="multilabel")
    with TestClient(create_app(run)) as c:
        body = c.post("/v1/predict", json={"texts": TEXTS[:2]}).json()
    expected = Classifier.load(run).predict(TEXTS[:2])
    assert [p["label"] for p in body["predictions"]] == [p.label for p in expected]
    assert all(isinstance(p["label"], list) and set(p["scores"]) == {"pos", "neg"} for p in body["predictions"])


def test_concurrent_requests_share_batches_and_get_their_own_answers(run, monkeypatch):
    expected = {t: p.scores for t, p in zip(TEXTS, Classifier.load(run).predict(TEXTS))}
    calls: list[int] = []
    original = Classifier.predict_proba

    def counted(self, texts, pairs=None, batch_size=64):
        calls.append(len(texts))
        return original(self, texts, pairs, batch_size)

    monkeypatch.setattr(Classifier, "predict_proba", counted)
    bodies = [{"text": TEXTS[i % 5]} if i % 3 else {"texts": [TEXTS[i % 5], TEXTS[(i + 1) % 5]]} for i in range(24)]

    async def fire(app) -> list[dict]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                responses = await asyncio.gather(*[c.post("/v1/predict", json=b) for b in bodies])
        assert all(r.status_code == 200 for r in responses)
        return [r.json() for r in responses]

    for wait_ms in (50, 0):
        calls.clear()
        results = asyncio.run(fire(create_app(run, micro_batch_ms=wait_ms)))
        for body, result in zip(bodies, results):
            texts = [body["text"]] if "text" in body else body["texts"]
            assert len(result["predictions"]) == len(texts)
            for text, prediction in zip(texts, result["predictions"]):
                assert prediction["scores"] == pytest.approx(expected[text], abs=1e-5)
        if wait_ms:
            assert len(calls) < len(bodies) and sum(calls) == 32  # requests were merged, no text lost or repeated
        else:
            assert len(calls) == len(bodies)  # micro-batching off: one model call per request


def test_a_failing_request_fails_alone_and_the_batcher_keeps_going():
    def predict(texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise ValueError("model failed")
        return np.asarray([[len(t)] for t in texts], dtype=float)

    async def scenario():
        batcher = MicroBatcher(predict, wait_ms=30, max_texts=100)
        first = await asyncio.gather(batcher(["a"]), batcher(["boom"]), batcher(["ccc"]), return_exceptions=True)
        second = await asyncio.gather(batcher(["dd"]), batcher(["e", "fff"]))
        await batcher.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert first[0].tolist() == [[1.0]] and isinstance(first[1], ValueError) and first[2].tolist() == [[3.0]]
    assert second[0].tolist() == [[2.0]] and second[1].tolist() == [[1.0], [3.0]]


@pytest.mark.parametrize("body, says", [
    ({"text": "\ud800"}, "unable to parse raw data as a unicode string"),
    ({"texts": ["fine", "bad \udfff tail"]}, '"loc":["body","texts",1]'),
    ({"text": "   "}, "is blank"),
])
def test_texts_no_tokenizer_can_encode_are_422s_naming_the_item(client, body, says):
    raw = json.dumps(body)  # json.dumps writes the lone surrogate as the escape \ud800, as a hostile client would
    response = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and says in response.text, response.text


@pytest.mark.parametrize("upload, says", [
    (("a.jsonl", b'{"text": "ok"}\n{"text": "\\ud800"}\n'), "row 2: Input should be a valid string, unable to parse raw data as a unicode string"),
    (("a.csv", b"text\nok\n \n"), "row 2 has an empty text"),
])
def test_upload_texts_are_checked_like_json_texts(client, upload, says):
    response = client.post("/v1/predict-file", files={"file": upload})
    assert response.status_code == 400 and says in response.json()["detail"], response.text


def test_a_poisoned_text_among_concurrent_requests_fails_only_its_own_request(run, monkeypatch):
    """The tokenizer-level failure the audit found, forced past validation: every other request still succeeds."""
    original = Classifier.predict_proba

    def fragile(self, texts, pairs=None, batch_size=64):
        if any("poison" in t for t in texts):
            raise UnicodeEncodeError("utf-8", "poison", 0, 1, "surrogates not allowed")
        return original(self, texts, pairs, batch_size)

    monkeypatch.setattr(Classifier, "predict_proba", fragile)
    bodies = [{"text": TEXTS[i % 5]} for i in range(30)]
    bodies.insert(13, {"text": "poison pill"})

    async def fire(app) -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await asyncio.gather(*[c.post("/v1/predict", json=b) for b in bodies])

    responses = asyncio.run(fire(create_app(run, micro_batch_ms=50)))
    statuses = [r.status_code for r in responses]
    assert statuses.pop(13) == 500 and statuses == [200] * 30


def test_only_the_bound_host_names_are_answered(run):
    with TestClient(create_app(run, limits=LIMITS), base_url="http://127.0.0.1:8000") as local:
        assert local.get("/healthz").status_code == 200
    with TestClient(create_app(run, limits=LIMITS), base_url="http://attacker.example:8000") as rebound:
        assert rebound.get("/healthz").status_code == 400  # DNS rebinding: the page's own domain, our loopback


def test_api_docs_are_served_from_the_packaged_swagger_ui(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_sigterm_lets_every_request_in_flight_finish(run, tmp_path):
    port = free_port()
    token = tmp_path / "token"
    token.write_text("a-long-enough-token-1234\n")
    server = subprocess.Popen([sys.executable, "-m", "distilora.cli", "serve", str(run), "--port", str(port),
                               "--micro-batch-ms", "400", "--token-file", str(token)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)

        async def in_flight() -> list[httpx.Response]:
            headers = {"Authorization": "Bearer a-long-enough-token-1234"}
            async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as c:
                sent = [asyncio.create_task(c.post("/v1/predict", json={"text": TEXTS[i % 5]})) for i in range(12)]
                await asyncio.sleep(0.15)  # all 12 are inside the 400 ms batching window now
                server.send_signal(signal.SIGTERM)
                return await asyncio.gather(*sent)

        responses = asyncio.run(in_flight())
        assert [r.status_code for r in responses] == [200] * 12
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has drained
    finally:
        if server.poll() is None:
            server.kill()
    log = server.stdout.read()
    assert log.count('"path": "/v1/predict", "status": 200') == 12  # one JSON access line per request


def test_serve_on_a_busy_port_fails_before_loading_the_model(run):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "distilora.cli", "serve", str(run), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and f"--port {port}: cannot listen there" in out.stderr
    assert "Traceback" not in out.stderr


def test_metrics_count_a_known_number_of_requests_and_every_response_has_a_request_id(run):
    with TestClient(create_app(run, limits=LIMITS)) as c:
        ids = set()
        for i in range(7):
            response = c.post("/v1/predict", json={"text": TEXTS[i % 5]})
            assert response.status_code == 200
            ids.add(response.headers["x-request-id"])
        for _ in range(2):
            assert c.post("/v1/predict", json={"text": "x" * 41}).status_code == 422
        assert c.post("/v1/predict", json={"text": "ok"}, headers={"x-request-id": "trace-42"}).headers[
            "x-request-id"] == "trace-42"  # a caller's id is kept, so logs on both sides line up
        metrics = c.get("/metrics").text
    assert len(ids) == 7
    assert 'distilora_requests_total{path="/v1/predict",status="200"} 8.0' in metrics
    assert 'distilora_requests_total{path="/v1/predict",status="422"} 2.0' in metrics
    assert 'distilora_errors_total{kind="invalid"} 2.0' in metrics
    assert 'distilora_batch_texts_count 8.0' in metrics and "distilora_request_seconds_bucket" in metrics
    assert "distilora_queue_depth" in metrics


def test_a_token_is_required_when_set_but_probes_stay_open(run):
    token = "s3cret-token-of-length"
    with TestClient(create_app(run, limits=LIMITS, token=token)) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").json()["status"] == "ready"
        refused = c.post("/v1/predict", json={"text": "good"})
        assert refused.status_code == 401 and "bearer token" in refused.json()["detail"]
        assert c.post("/v1/predict", json={"text": "good"}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics").status_code == 401
        ok = c.post("/v1/predict", json={"text": "good"}, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200


def test_a_real_uvicorn_server_over_http(run):
    with live_server(create_app(run, limits=LIMITS)) as url, httpx.Client(base_url=url, timeout=10) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.post("/v1/predict", json={"text": "good great app"}).status_code == 200
        assert c.post("/v1/predict", json={"text": "x" * 41}).status_code == 422
        chunked = c.post("/v1/predict", content=iter([b'{"text": "', b"a" * 2500, b'"}']),
                         headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert c.get("/").headers["content-type"].startswith("text/html")


def test_serve_command_listens_on_loopback_with_its_options(run, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "distilora.cli", "serve", str(run), "--port", str(port),
                               "--micro-batch-ms", "0", "--max-chars", "10"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert health.json() == {"status": "ok"}
        limited = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"text": "x" * 11}, timeout=10)
        assert limited.status_code == 422 and "at most 10 characters" in limited.text
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0]
    assert f"serving {run} on http://127.0.0.1:{port}/" in output
