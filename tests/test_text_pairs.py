"""A run trained on text pairs (data.text_pair_column) is scored on pairs everywhere: the Python API, single-text
predict, the server's JSON and file endpoints, and the ONNX export's checks; a missing second text fails loudly
instead of giving scores that mean nothing, and a single-text run refuses one."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from browser import chromium_page, needs_chromium
from runs import live_server, run_cli
from tinymodels import NEGATIVE, POSITIVE, write_tiny_backbone, write_tiny_reviews

PAIRS = [("is the app fine", "good great app"), ("was the product ok", "awful broken product"),
         ("how was it", "happy nice service")]


def write_pairs(path: Path, rows: int) -> Path:
    """Prompt + response rows whose label follows the response's words."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "response", "label"])
        for i in range(rows):
            words = POSITIVE if i % 2 == 0 else NEGATIVE
            writer.writerow([f"question {i % 5} about it", f"{words[i % 8]} {words[(i + 3) % 8]} the app",
                             "positive" if i % 2 == 0 else "negative"])
    return path


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory) -> Path:
    from distilora.config import build_config
    from distilora.training.runner import train

    tmp = tmp_path_factory.mktemp("pairs")
    backbone = write_tiny_backbone(tmp / "backbone", hidden=32)
    cfg = build_config({"output_dir": str(tmp / "run"), "model": {"backbone": str(backbone), "method": "full"},
                        "data": {"train": str(write_pairs(tmp / "train.csv", 60)), "text_column": "prompt",
                                 "text_pair_column": "response", "max_length": 32},
                        "train": {"epochs": 4, "batch_size": 8, "lr": 2e-3}, "eval": {"report": False}})
    return train(cfg)


def test_the_python_api_needs_the_second_texts(pair_run):
    from distilora.errors import ConfigError
    from distilora.inference.classifier import Classifier

    classifier = Classifier.load(pair_run)
    texts, pairs = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    with pytest.raises(ConfigError, match="this run classifies text pairs"):
        classifier.predict_logits(texts)
    together = classifier.predict_logits(texts, pairs)
    alone = np.concatenate([classifier.predict_logits([t], [p]) for t, p in PAIRS])
    assert np.allclose(together, alone, atol=1e-5)
    assert not np.allclose(together, classifier.predict_logits(texts, texts), atol=1e-4)  # the pair is read


def test_single_text_predict_takes_the_pair_and_refuses_without_it(pair_run, monkeypatch, capsys):
    from distilora.inference.classifier import Classifier

    code, out, _ = run_cli(monkeypatch, capsys, "predict", str(pair_run), PAIRS[0][0], "--pair", PAIRS[0][1])
    assert code == 0
    expected = Classifier.load(pair_run).predict([PAIRS[0][0]], [PAIRS[0][1]])[0]
    assert json.loads(out)["scores"] == expected.scores
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(pair_run), PAIRS[0][0])
    assert code != 0 and "this run classifies text pairs" in err and len(err.strip().splitlines()) == 1


def test_the_server_scores_pairs_from_json_and_from_files(pair_run):
    from distilora.inference.classifier import Classifier
    from distilora.serving.app import create_app

    expected = Classifier.load(pair_run).predict([p[0] for p in PAIRS], [p[1] for p in PAIRS])
    with TestClient(create_app(pair_run, micro_batch_ms=0)) as client:
        assert client.get("/v1/model").json()["text_pair"] is True
        one = client.post("/v1/predict", json={"text": PAIRS[0][0], "text_pair": PAIRS[0][1]})
        assert one.status_code == 200 and one.json()["predictions"][0]["scores"] == expected[0].scores
        many = client.post("/v1/predict", json={"texts": [p[0] for p in PAIRS], "text_pairs": [p[1] for p in PAIRS]})
        assert [p["scores"] for p in many.json()["predictions"]] == [e.scores for e in expected]
        for body in ({"text": PAIRS[0][0]}, {"texts": ["a", "b"], "text_pairs": ["c"]}):
            refused = client.post("/v1/predict", json=body)
            assert refused.status_code == 422 and "classifies text pairs" in refused.text
        upload = io.StringIO()
        csv.writer(upload).writerows([["prompt", "response"], *PAIRS])
        scored = client.post("/v1/predict-file", files={"file": ("pairs.csv", upload.getvalue().encode())})
        assert scored.status_code == 200, scored.text
        assert [p["scores"] for p in scored.json()["predictions"]] == [e.scores for e in expected]
        assert scored.json()["text_pairs"] == [p[1] for p in PAIRS]
        lacking = client.post("/v1/predict-file", files={"file": ("a.csv", b"prompt\nhello\n")})
        assert lacking.status_code == 400 and "needs a 'response' column" in lacking.json()["detail"]


def test_a_single_text_run_refuses_a_second_text(tmp_path):
    from distilora.config import build_config
    from distilora.serving.app import create_app
    from distilora.training.runner import train

    backbone = write_tiny_backbone(tmp_path / "backbone", hidden=32)
    run = train(build_config({"output_dir": str(tmp_path / "run"), "model": {"backbone": str(backbone)},
                              "data": {"train": str(write_tiny_reviews(tmp_path / "t.csv", 30)), "max_length": 32},
                              "train": {"epochs": 1}, "eval": {"report": False}}))
    with TestClient(create_app(run, micro_batch_ms=0)) as client:
        refused = client.post("/v1/predict", json={"text": "good", "text_pair": "bad"})
        assert refused.status_code == 422 and "classifies single texts" in refused.text


@pytest.mark.slow
def test_the_onnx_export_checks_pairs(pair_run, tmp_path):
    import shutil

    from distilora.inference.classifier import Classifier
    from distilora.inference.export import export_run

    run = Path(shutil.copytree(pair_run, tmp_path / "run"))
    export_run(run, "onnx")
    report = json.loads((run / "onnx" / "export.json").read_text())
    assert report["onnx"]["batch_invariance"]["decision_changes"] == 0
    texts, pairs = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    assert np.allclose(Classifier.load(run, backend="onnx").predict_logits(texts, pairs),
                       Classifier.load(run).predict_logits(texts, pairs), atol=1e-4)


@needs_chromium
def test_the_web_page_asks_for_the_second_text(pair_run):
    from distilora.serving.app import create_app

    errors: list[str] = []
    with live_server(create_app(pair_run)) as url, chromium_page(errors) as page:
        page.goto(url + "/")
        page.wait_for_function("document.querySelectorAll('#card tr').length > 0")
        assert page.is_visible("#pair") and "prompt" in page.inner_text("#file-help")
        page.fill("#text", PAIRS[0][0])
        page.fill("#pair", PAIRS[0][1])
        page.wait_for_function("document.querySelectorAll('#bars .bar').length == 2")
        assert page.inner_text("#label") in ("negative", "positive") and not page.inner_text("#error")
    assert not errors, errors
