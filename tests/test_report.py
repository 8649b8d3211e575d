"""The report of a real (tiny) run: every section, embedded figures, escaped texts, and a clean load in Chromium."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distilora.config import build_config
from distilora.reporting.report import write_report
from distilora.training.runner import train
from browser import chromium_page, needs_chromium
from test_train_e2e import tiny_raw

SECTION_TITLES = ["Overview", "Data", "Training", "Results", "Confusion matrix", "ROC and PR curves",
                  "Probability distributions", "Calibration", "Thresholds", "Error analysis", "Configuration"]



@pytest.fixture(scope="module", params=["binary", "multiclass", "multilabel"])
def report(request, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp(request.param)
    raw = tiny_raw(base, task=request.param, rows=120, epochs=2)
    raw["eval"]["report"] = True
    run = train(build_config(raw))
    return run / "report.html"


def test_report_has_every_section_and_embedded_figures(report):
    page = report.read_text()
    for section in SECTION_TITLES:
        assert f"<h2>{section}</h2>" in page
    assert page.count("data:image/png;base64,") >= 6
    assert "http://" not in page and "https://" not in page  # opens offline
    md = (report.parent / "report.md").read_text()
    assert "## Results" in md and "precision" in md


def test_report_gives_each_headline_figure_its_interval(report):
    import json

    from distilora.runfolder import RunFolder

    folder = RunFolder(report.parent)
    metrics = json.loads((folder.metrics_dir / "test.json").read_text())
    md = (report.parent / "report.md").read_text().split("How sure")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in md.splitlines() if line.startswith("| ")}
    headline = {"binary": ["accuracy", "f1", "roc_auc", "pr_auc"], "multiclass": ["accuracy", "macro_f1"],
                "multilabel": ["subset_accuracy", "micro_f1", "macro_f1"]}[folder.info().task]
    assert [m for m in rows if m != "metric"] == headline
    for metric in headline:
        value, interval = float(rows[metric][0]), rows[metric][1].strip(" |")
        low, high = (float(x) for x in interval.split(" - "))
        assert value == pytest.approx(metrics[metric], abs=1e-4) and low <= value <= high
    assert report.read_text().count("<small>95%: ") == len(headline)  # each headline card carries its interval


def test_intervals_are_stored_once_with_the_split_and_the_report_reads_them(report, tmp_path):
    import json

    run = Path(shutil.copytree(report.parent, tmp_path / "run"))
    path = run / "metrics" / "test.json"
    metrics = json.loads(path.read_text())
    stored = metrics["intervals"]
    assert stored["level"] == 0.95 and stored["resamples"] == 2000
    for metric, interval in stored["metrics"].items():
        assert interval["value"] == pytest.approx(metrics[metric]) and interval["low"] <= interval["high"]
    first = next(iter(stored["metrics"]))
    stored["metrics"][first]["low"] = 0.0123  # the report shows what the split stored, it does not resample again
    path.write_text(json.dumps(metrics))
    write_report(run)
    assert "<small>95%: 0.012-" in (run / "report.html").read_text()
    del metrics["intervals"]  # a folder from before splits stored them: the report computes them itself
    path.write_text(json.dumps(metrics))
    write_report(run)
    cards = (run / "report.html").read_text().count("<small>95%: ")
    assert cards == len(stored["metrics"]) and "<small>95%: 0.012-" not in (run / "report.html").read_text()


def test_report_keeps_the_config_the_mistakes_and_the_warnings_a_reader_needs(report):
    import csv
    import json

    import yaml

    from distilora.runfolder import RunFolder

    folder = RunFolder(report.parent)
    page = report.read_text()
    config = yaml.safe_load(folder.config_yaml.read_text())
    assert f"lr: {config['train']['lr']}" in page and "<h2>Configuration</h2>" in page
    assert "kept: step" in page or "dashed line marks the step" in page
    info = folder.info()
    if info.calibration and not info.calibration["kept"]:
        assert "Temperature scaling was not used" in page
    if info.task == "multilabel":
        assert not folder.errors_csv("test").exists()
        return
    rows = list(csv.DictReader(folder.errors_csv("test").open(encoding="utf-8")))
    predictions = folder.predictions("test")
    metrics = json.loads((folder.metrics_dir / "test.json").read_text())
    assert len(rows) == round(metrics["n"] * (1 - metrics["accuracy"]))  # every mistake, no more
    assert [float(r["p_true"]) for r in rows] == sorted(float(r["p_true"]) for r in rows)
    for row in rows:
        assert row["true"] != row["predicted"] and predictions[int(row["row"]) - 1]["text"] == row["text"]
    assert "share of true class" in page and "share_of_true" not in page


def test_a_report_on_the_validation_split_says_it_is_optimistic(tmp_path, report):
    run = tmp_path / "run"
    shutil.copytree(report.parent, run)
    html_path, md_path = write_report(run, "validation")
    assert "they are optimistic" in html_path.read_text() and "> These figures are on the validation split" in md_path.read_text()


def test_texts_are_escaped(tmp_path, report):
    import json

    run = tmp_path / "run"
    shutil.copytree(report.parent, run)
    path = run / "predictions" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row["text"] = "<script>alert(1)</script> " + row["text"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    html_path, _ = write_report(run)
    page = html_path.read_text()
    assert "<script>alert(1)</script>" not in page


def test_texts_with_unicode_line_separators_survive_the_run_folder(tmp_path, report):
    """IMDB holds U+0085 and U+2028 inside reviews: str.splitlines would cut such a JSON line in two."""
    import json

    from distilora.runfolder import RunFolder, write_jsonl_atomic

    run = tmp_path / "run"
    shutil.copytree(report.parent, run)
    folder = RunFolder(run)
    rows = folder.predictions("test")
    for i, row in enumerate(rows):
        row["text"] = f"first\u2028second\x85third\x0c{i}"
    write_jsonl_atomic(folder.predictions_dir / "test.jsonl", rows)
    assert "\u2028" in (folder.predictions_dir / "test.jsonl").read_text(encoding="utf-8"), "kept unescaped"
    assert [r["text"] for r in folder.predictions("test")] == [r["text"] for r in rows]
    write_report(run)  # reads every split's predictions back

    from distilora.config import DataConfig
    from distilora.data.readers import read_table

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"a\u2028b{i}", "label": i % 2}, ensure_ascii=False) + "\n"
                             for i in range(3)), encoding="utf-8")
    assert read_table(str(jsonl), DataConfig())["text"].tolist() == ["a\u2028b0", "a\u2028b1", "a\u2028b2"]


@needs_chromium
def test_report_loads_in_a_real_browser(report, tmp_path):
    errors: list[str] = []
    with chromium_page(errors) as page:
        page.goto(report.as_uri())
        broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        headings = page.evaluate("[...document.querySelectorAll('section h2')].map(h => h.textContent)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert not errors and broken == 0
    assert headings == SECTION_TITLES
