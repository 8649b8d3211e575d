"""The API against its own OpenAPI schema (property-based fuzzing: never a 5xx) and the web page driven in a real
browser (type a text, see the bars; upload a file, see the table; no console error)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from distilora.serving.app import Limits, create_app
from browser import chromium_page, needs_chromium
from runs import live_server, make_tiny_run

LIMITS = Limits(max_chars=40, max_texts=3, max_body_bytes=2_000, max_file_rows=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("web"), method="full", task="binary")


def test_openapi_fuzz_never_gives_a_5xx(run):
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(run, limits=LIMITS))
    failures = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(op.as_strategy())
        def check(case):
            response = case.call()
            if response.status_code >= 500:
                failures.append((op.path, case.body, response.status_code))

        check()
    assert not failures, failures[:3]


def test_odd_unicode_and_lone_surrogates_never_give_a_5xx(run):
    """Texts from the whole code-point range, lone surrogates included (sent as JSON escapes, as a hostile client
    can): each is a 200 or a 4xx that says why, never a 5xx."""
    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    anything = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), min_size=0, max_size=60)
    statuses: list[int] = []
    with TestClient(create_app(run, limits=LIMITS, micro_batch_ms=5)) as client:
        @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(anything, min_size=1, max_size=3), st.booleans())
        def check(texts, single):
            body = json.dumps({"text": texts[0]} if single else {"texts": texts})  # escapes surrogates as \udXXX
            response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
            statuses.append(response.status_code)
            assert response.status_code < 500, (texts, response.text)
            assert response.status_code == 200 or "detail" in response.json()

        check()
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)


@needs_chromium
def test_web_page_in_a_real_browser(run, tmp_path):
    errors: list[str] = []
    with live_server(create_app(run, limits=LIMITS)) as url, chromium_page(errors) as page:
        page.goto(url + "/")
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
        assert "text" in page.inner_text("#file-help")  # the run's own column name
        with page.expect_download() as download:
            page.click("#download")
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert [r["text"] for r in rows] == ["good app", "bad app"]
        assert {r["pred_label"] for r in rows} <= {"negative", "positive"}
        assert abs(float(rows[0]["score_negative"]) + float(rows[0]["score_positive"]) - 1) < 1e-4
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert not errors, errors
