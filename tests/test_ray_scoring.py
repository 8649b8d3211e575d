"""Corpus scoring on Ray Data (`distilora predict --input GLOB --output DIR --ray local`): an actor pool scores
shards, every input column (ids) is kept, the scores equal the single-process Classifier's, and a second run skips
the shards already written. The shards name their text column differently from the training file (--text-column)."""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from distilora.inference.classifier import Classifier
from distilora.scale.ray_scoring import score_corpus
from runs import make_tiny_run, run_cli, validation_rows

ray = pytest.importorskip("ray.data", reason="Ray Data not installed: pip install 'distilora[ray]'")
BODY = ["data.text_column=body"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    run = make_tiny_run(tmp, "lora")
    texts, _ = validation_rows(tmp, "binary")
    shards = tmp / "in"
    shards.mkdir()
    for k in range(3):
        with (shards / f"part-{k}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["doc_id", "body"])
            writer.writerows((f"d{k}-{i}", text) for i, text in enumerate(texts[k::3]))
    return run, shards


def test_shards_are_scored_by_actors_keep_their_ids_and_resume(corpus, tmp_path):
    import ray as ray_core

    run, shards = corpus
    out = tmp_path / "out"
    try:
        first = score_corpus(run, str(shards / "*.csv"), out, actors=2, backend="torch", say=lambda _: None,
                             data_overrides=BODY)
        assert first["scored"] == 3 and first["skipped"] == 0 and first["actors"] == 2
        reference = Classifier.load(run)
        for k in range(3):
            source = pd.read_csv(shards / f"part-{k}.csv", dtype=str)
            scored = pd.read_parquet(out / f"part-{k}.parquet")
            assert list(scored["doc_id"]) == list(source["doc_id"])  # ids kept, rows in order
            expected = reference.predict_proba(list(source["body"]))
            np.testing.assert_allclose(scored[["score_negative", "score_positive"]].to_numpy(), expected, atol=1e-5)
            assert list(scored["pred_label"]) == [p.label for p in reference.predict(list(source["body"]))]
        assert first["rows"] == sum(len(pd.read_csv(p)) for p in shards.glob("*.csv"))

        kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        (out / "part-1.parquet").unlink()  # as if the run had been killed before this shard was written
        again = score_corpus(run, str(shards / "*.csv"), out, actors=2, backend="torch", say=lambda _: None,
                             data_overrides=BODY)
        assert again["scored"] == 1 and again["skipped"] == 2
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "part-1.parquet"} == \
            {k: v for k, v in kept.items() if k != "part-1.parquet"}
        assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file is left behind"
    finally:
        ray_core.shutdown()


def test_cli_skips_written_shards_without_starting_ray_and_names_a_bad_glob(corpus, tmp_path, monkeypatch, capsys):
    run, shards = corpus
    out = tmp_path / "out"
    out.mkdir()
    for k in range(3):
        (out / f"part-{k}.jsonl").write_text("{}\n")
    code, stdout, _ = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(shards / "*.csv"),
                              "--output", str(out), "--ray", "local", "--shard-format", "jsonl")
    assert code == 0 and "3 shards, 3 already written (skipped), 0 to score" in stdout
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(tmp_path / "none-*.csv"),
                           "--output", str(out), "--ray", "local")
    assert code == 2 and "matches no file" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(shards / "*.csv"),
                           "--output", str(out), "--ray", "local", "--set", "model.method=full")
    assert code == 2 and "only data.* fields" in err and len(err.strip().splitlines()) == 1


def test_auto_backend_is_the_engine_export_measured_fastest_that_exists(tmp_path):
    import json

    from distilora.inference.classifier import fastest_backend
    from distilora.runfolder import RunFolder

    folder = RunFolder(tmp_path)
    assert fastest_backend(folder) == "torch"  # nothing exported
    folder.onnx_dir.mkdir()
    (folder.onnx_dir / "model.onnx").write_bytes(b"")
    assert fastest_backend(folder) == "onnx"  # exported, never timed
    (folder.onnx_dir / "export.json").write_text(json.dumps({"speed": {"fastest_batch32": "onnx-int8"}}))
    assert fastest_backend(folder) == "onnx"  # the fastest one's file is gone
    (folder.onnx_dir / "model.int8.onnx").write_bytes(b"")
    assert fastest_backend(folder) == "onnx-int8"
