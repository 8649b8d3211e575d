"""Loading a run's model (PEFT head included) and the Classifier: same answers from the torch, ONNX and merged
engines, decisions that follow the run's temperature and thresholds, streams that keep order in bounded memory,
an ONNX path that never imports torch, and the `predict` command."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from distilora import cpu_bf16
from distilora.errors import DistiloraWarning, RunFolderError
from distilora.evaluation.metrics import probabilities
from distilora.inference.classifier import Classifier
from distilora.inference.export import export_run
from distilora.runfolder import RunFolder
from distilora.modeling.loading import load_run_model
from runs import logits_of, make_tiny_run, run_cli, stored_logits

TEXTS = ["good great app", "bad awful service", "the movie was fine but sad", "love it", "terrible broken product",
         "this app is not good, it was very poor and i hate it"]


@pytest.mark.parametrize("method", ["lora", "full", "head"])
def test_reloaded_model_gives_the_logits_of_the_model_that_was_saved(tmp_path, method):
    run = make_tiny_run(tmp_path, method=method)
    texts, saved = stored_logits(run)
    merged, _ = load_run_model(run)
    np.testing.assert_allclose(logits_of(merged, texts, run), saved, atol=1e-5)
    if method == "lora":
        adapted, _ = load_run_model(run, merge=False)
        assert type(adapted).__name__.startswith("Peft")
        np.testing.assert_allclose(logits_of(adapted, texts, run), saved, atol=1e-5)
        # the check above is sharp: the same base with a fresh head instead of the adapter's is far off
        from distilora.data.labels import LabelSpace
        from distilora.modeling.build import load_classifier

        fresh = load_classifier(str(tmp_path / "backbone"), LabelSpace(("negative", "positive"), "binary")).eval()
        assert np.abs(logits_of(fresh, texts, run) - saved).max() > 0.1


def test_adapters_without_a_head_and_pickled_weights_are_refused(tmp_path):
    lora = make_tiny_run(tmp_path, method="lora", name="lora")
    config = lora / "model" / "adapter_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "modules_to_save": None}))
    with pytest.raises(RunFolderError, match="modules_to_save is empty"):
        load_run_model(lora)
    full = make_tiny_run(tmp_path, method="full", name="full")
    (full / "model" / "model.safetensors").rename(full / "model" / "pytorch_model.bin")
    with pytest.raises(RunFolderError, match="only safetensors"):
        load_run_model(full)
    (lora / "model" / "adapter_model.safetensors").unlink()
    with pytest.raises(RunFolderError, match="no adapter_model.safetensors"):
        load_run_model(lora)


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_torch_onnx_and_merged_engines_agree(tmp_path, task):
    run = make_tiny_run(tmp_path, method="lora", task=task)
    adapter = Classifier.load(run)  # merges the adapter in memory
    export_run(run, "merged")
    export_run(run, "onnx")
    engines = {"torch": adapter, "merged": Classifier.load(run), "onnx": Classifier.load(run, backend="onnx")}
    probs = {name: clf.predict_proba(TEXTS) for name, clf in engines.items()}
    labels = {name: [p.label for p in clf.predict(TEXTS)] for name, clf in engines.items()}
    for name in ("merged", "onnx"):
        np.testing.assert_allclose(probs[name], probs["torch"], atol=1e-5)
        assert labels[name] == labels["torch"]
    _, saved = stored_logits(run)
    assert probs["torch"].shape == (len(TEXTS), saved.shape[1])


def test_scores_use_the_runs_temperature_and_decisions_its_thresholds(tmp_path):
    binary = Classifier.load(make_tiny_run(tmp_path, task="binary", temperature=2.5, name="binary"))
    texts, saved = stored_logits(tmp_path / "binary")
    probs = binary.predict_proba(texts)
    np.testing.assert_allclose(probs, probabilities("binary", saved, 2.5), atol=1e-5)
    assert not np.allclose(probs, probabilities("binary", saved, 1.0), atol=1e-3)  # the temperature matters here
    for prediction, p in zip(binary.predict(texts), probs):
        assert prediction.label == ("positive" if p[1] >= 0.4 else "negative")  # the run's threshold is 0.4
        assert prediction.scores == pytest.approx({"negative": p[0], "positive": p[1]}, abs=1e-6)

    multilabel = Classifier.load(make_tiny_run(tmp_path, task="multilabel", name="multilabel"))
    probs = multilabel.predict_proba(texts)
    for prediction, p in zip(multilabel.predict(texts), probs):
        assert prediction.label == [name for name, t, q in zip(["pos", "neg"], [0.5, 0.3], p) if q >= t]
    assert multilabel.predict("good")[0].label == multilabel.predict(["good"])[0].label
    assert multilabel.predict([]) == []


def test_a_long_stream_keeps_its_order_and_is_read_lazily(tmp_path):
    clf = Classifier.load(make_tiny_run(tmp_path), threads=1)  # one thread: steady timing on a busy shared CPU
    words = "good great bad awful the movie app was very not".split()
    texts = [" ".join(words[(i * 7 + k) % len(words)] for k in range(1 + i % 23)) for i in range(3000)]
    pulled = 0

    def source():
        nonlocal pulled
        for text in texts:
            pulled += 1
            yield text

    stream = clf.predict_stream(source(), batch_size=32, chunk=256)
    first = next(stream)
    assert pulled == 256  # one chunk read, not the whole file
    streamed = [first, *stream]
    assert pulled == len(texts) and len(streamed) == len(texts)
    expected = clf.predict_proba(texts, batch_size=32)
    got = np.asarray([[p.scores[name] for name in clf.labels] for p in streamed])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    singles = [0, 1, 1234, 2999]  # one text alone (no padding at all) matches its place in the stream
    np.testing.assert_allclose(clf.predict_proba([texts[i] for i in singles], batch_size=1), got[singles], atol=1e-5)


def test_onnx_path_never_imports_torch(tmp_path):
    run = make_tiny_run(tmp_path)
    export_run(run, "onnx")
    code = (f"import sys; from distilora.inference.classifier import Classifier; "
            f"c = Classifier.load({str(run)!r}, backend='onnx', threads=1); print(c.predict(['good'])[0].label); "
            f"assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("negative", "positive")


def test_missing_export_and_unknown_backend_say_what_to_do(tmp_path):
    run = make_tiny_run(tmp_path)
    for backend, fmt in (("onnx", "onnx"), ("onnx-fused", "onnx"), ("onnx-int8", "onnx-int8")):
        with pytest.raises(RunFolderError, match=f"not exported yet; run `distilora export .* --format {fmt}`"):
            Classifier.load(run, backend=backend)
    with pytest.raises(RunFolderError, match="not one of torch, torch-bf16, onnx, onnx-fused, onnx-int8"):
        Classifier.load(run, backend="tensorrt")
    with pytest.raises(RunFolderError, match="run folder not found"):
        Classifier.load(tmp_path / "nowhere")


def test_the_bf16_engine_keeps_the_decisions_of_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: True)  # the bf16 path, whatever this CI machine's CPU
    run = make_tiny_run(tmp_path, method="lora")
    texts = [r["text"] for r in RunFolder(run).predictions("validation")]
    fp32, bf16 = Classifier.load(run), Classifier.load(run, backend="torch-bf16")
    assert bf16.engine.bf16 and not fp32.engine.bf16
    assert np.abs(bf16.predict_logits(texts) - fp32.predict_logits(texts)).max() < 0.05  # bf16: ~3 digits
    assert [p.label for p in bf16.predict(texts)] == [p.label for p in fp32.predict(texts)]
    monkeypatch.setattr(cpu_bf16, "native_bf16", lambda: False)
    with pytest.warns(DistiloraWarning, match="backend torch-bf16: this CPU has no native bf16"):
        assert not Classifier.load(run, backend="torch-bf16").engine.bf16


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_prediction_keeps_the_input_columns_and_names_its_own(tmp_path, suffix):
    import pandas as pd

    from distilora.config import DataConfig
    from distilora.inference.predict_file import predict_file

    run = make_tiny_run(tmp_path)
    clf = Classifier.load(run)
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(len(TEXTS) * 3)], "comment": TEXTS * 3,
                          "label": ["gold"] * (len(TEXTS) * 3)})
    source = tmp_path / f"in{suffix}"
    {".csv": lambda: frame.to_csv(source, index=False), ".parquet": lambda: frame.to_parquet(source),
     ".jsonl": lambda: frame.to_json(source, orient="records", lines=True)}[suffix]()
    out = tmp_path / f"out{suffix}"
    count = predict_file(clf, str(source), str(out), DataConfig(text_column="comment"), chunk=4, progress=False)
    back = {".csv": pd.read_csv, ".parquet": pd.read_parquet,
            ".jsonl": lambda p: pd.read_json(p, lines=True)}[suffix](out)
    assert count == len(frame) and list(back.columns) == ["id", "comment", "label", "pred_label", "score_negative",
                                                          "score_positive"]
    assert back["id"].tolist() == frame["id"].tolist() and (back["label"] == "gold").all()  # ids and gold kept as is
    expected = clf.predict(frame["comment"].tolist())
    assert back["pred_label"].tolist() == [p.label for p in expected]
    np.testing.assert_allclose(back["score_positive"], [p.scores["positive"] for p in expected], atol=1e-6)


def test_file_prediction_to_stdout_and_errors_naming_the_row_of_the_whole_file(tmp_path, monkeypatch, capsys):
    run = make_tiny_run(tmp_path)
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(f'"{t}"' for t in TEXTS) + "\n")
    code, out, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(source), "--output", "-")
    assert code == 0 and [json.loads(line)["text"] for line in out.splitlines()] == TEXTS, err
    assert f"wrote {len(TEXTS)} predictions to stdout" in err
    from distilora.config import DataConfig
    from distilora.errors import DataError
    from distilora.inference.predict_file import predict_file

    bad = tmp_path / "bad.csv"
    bad.write_text("text\n" + "\n".join(f'"{t}"' for t in TEXTS * 3) + '\n""\n')
    with pytest.raises(DataError, match=rf"bad.csv: row {len(TEXTS) * 3 + 1}, column 'text': the text is empty"):
        predict_file(Classifier.load(run), str(bad), str(tmp_path / "o.csv"), DataConfig(), chunk=4, progress=False)
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv.*"))


def test_predict_command_for_one_text_and_for_a_file(tmp_path, monkeypatch, capsys):
    run = make_tiny_run(tmp_path)
    expected = Classifier.load(run).predict(TEXTS)
    code, out, _ = run_cli(monkeypatch, capsys, "predict", str(run), TEXTS[0])
    assert code == 0 and json.loads(out)["label"] == expected[0].label
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(f'"{t}"' for t in TEXTS) + "\n")
    output = tmp_path / "out.jsonl"
    code, out, _ = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(source), "--output", str(output))
    assert code == 0 and f"wrote {len(TEXTS)} predictions" in out
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["text"] for r in rows] == TEXTS and [r["pred_label"] for r in rows] == [p.label for p in expected]
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(tmp_path / "none.csv"),
                           "--output", str(output))
    assert code == 2 and "none.csv" in err and "Traceback" not in err
    assert [json.loads(line)["text"] for line in output.read_text().splitlines()] == TEXTS  # old output untouched


def test_predict_reads_a_file_with_its_own_columns_and_delimiter(tmp_path, monkeypatch, capsys):
    run = make_tiny_run(tmp_path)
    expected = [p.label for p in Classifier.load(run).predict(TEXTS)]
    source = tmp_path / "other.csv"
    source.write_text("id;body\n" + "\n".join(f'{i};"{t}"' for i, t in enumerate(TEXTS)) + "\n")
    output = tmp_path / "out.jsonl"
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(source), "--output", str(output),
                           "--set", "data.delimiter=;")
    assert code == 2 and "no column 'text'" in err and not output.exists()
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(source), "--output", str(output),
                           "--text-column", "body", "--set", "data.delimiter=;")
    assert code == 0, err
    assert [json.loads(line)["pred_label"] for line in output.read_text().splitlines()] == expected
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), "--input", str(source), "--output", "-",
                           "--set", "train.lr=1")
    assert code == 2 and "--set train.lr=1: only data.* fields" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(monkeypatch, capsys, "predict", str(run), TEXTS[0], "--text-column", "body")
    assert code == 2 and "a TEXT argument needs neither" in err
