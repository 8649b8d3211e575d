"""Exports (merged / ONNX / int8) check the files they write against PyTorch, refuse and leave nothing behind when
they drift, record what they checked and how fast each engine ran, and work on a run the trainer wrote."""
from __future__ import annotations

import json

import numpy as np
import pytest

from distilora.errors import ExportError
from distilora.inference.classifier import Classifier
from distilora.inference.export import export_run
from distilora.runfolder import RunFolder
from runs import make_tiny_run, run_cli, stored_logits, validation_rows


def leftovers(run) -> list[str]:
    return [p.name for p in run.iterdir() if p.name.startswith(".")]


def test_merged_export_is_a_plain_transformers_folder_with_the_trained_logits(tmp_path):
    run = make_tiny_run(tmp_path, method="lora", task="multiclass")
    report = export_run(run, "merged")
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(run / "merged")
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert not (run / "merged" / "adapter_config.json").exists() and (run / "merged" / "tokenizer.json").is_file()
    texts, saved = stored_logits(run)
    np.testing.assert_allclose(Classifier.load(run).predict_logits(texts), saved, atol=1e-5)  # now loads merged/
    assert report["max_abs_logit_diff"] < 1e-4 and report["checked_texts"] == len(texts)
    assert json.loads((run / "merged" / "export.json").read_text()) == report
    assert not leftovers(run)


def test_merging_a_run_without_an_adapter_is_refused(tmp_path):
    run = make_tiny_run(tmp_path, method="full")
    with pytest.raises(ExportError, match="no adapter to merge"):
        export_run(run, "merged")
    assert not (run / "merged").exists() and not leftovers(run)
    with pytest.raises(ExportError, match="choose one of merged, onnx, onnx-int8"):
        export_run(run, "tflite")


def test_onnx_export_checks_itself_times_every_engine_and_takes_any_batch_shape(tmp_path):
    run = make_tiny_run(tmp_path, method="lora", task="multilabel")
    report = export_run(run, "onnx")
    assert sorted(p.name for p in (run / "onnx").iterdir()) == ["export.json", "model.fused.onnx", "model.onnx",
                                                                 "tokenizer.json", "tokenizer_config.json"]
    assert report["max_abs_logit_diff"] < 1e-4 and report["accuracy_against"] == "gold labels"
    assert report["checked_on"].endswith("validation.jsonl") and report["accuracy_drop_points"] == 0
    assert set(report["timings"]) == {"torch", "onnx", "onnx-fused"} and report["fastest_batch32"] in report["timings"]
    assert all(t["samples_per_s_batch32"] > 0 and t["ms_one_text_p50"] > 0 for t in report["timings"].values())
    stored = json.loads((run / "onnx" / "export.json").read_text())
    assert stored["onnx"]["max_abs_logit_diff"] == report["max_abs_logit_diff"] and "speed" in stored
    assert stored["onnx-fused"] == report["fused"] and report["fused"]["max_abs_logit_diff"] < 1e-4
    assert report["fused"]["batch_invariance"]["max_abs_prob_diff"] <= 1e-5

    import onnx
    import onnxruntime as ort

    operators = {name: {node.op_type for node in onnx.load(str(run / "onnx" / name)).graph.node}
                 for name in ("model.onnx", "model.fused.onnx")}
    # eager attention traced: no IsNaN/Where guard over every attention score (SDPA's opset-17 form)
    assert "IsNaN" not in operators["model.onnx"] and "Attention" not in operators["model.onnx"]  # portable ONNX
    assert {"Attention", "SkipLayerNormalization"} <= operators["model.fused.onnx"]  # ONNX Runtime's own operators
    for name in ("model.onnx", "model.fused.onnx"):
        session = ort.InferenceSession(str(run / "onnx" / name), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
        for batch, width in ((1, 5), (3, 17)):
            ones = np.ones((batch, width), dtype=np.int64)
            (logits,) = session.run(["logits"], {"input_ids": ones * 7, "attention_mask": ones,
                                                 "token_type_ids": 0 * ones})
            assert logits.shape == (batch, 2)
    texts, saved = stored_logits(run)
    np.testing.assert_allclose(Classifier.load(run, backend="onnx-fused").predict_logits(texts), saved, atol=1e-4)


def test_int8_export_quantises_a_checked_fp32_graph(tmp_path):
    run = make_tiny_run(tmp_path, method="full", task="binary")
    report = export_run(run, "onnx-int8")  # starts from nothing: fp32 is exported and checked first
    stored = json.loads((run / "onnx" / "export.json").read_text())
    assert stored["onnx"]["max_abs_logit_diff"] < 1e-4
    assert report["file"] == "model.int8.onnx" and stored["onnx-int8"]["file"] == "model.int8.onnx"
    assert 0 < report["max_abs_logit_diff"] < 1.0  # quantised, so not bit-exact, but close
    assert set(report["timings"]) == {"torch", "onnx", "onnx-fused", "onnx-int8"}
    int8 = Classifier.load(run, backend="onnx-int8")
    texts, saved = stored_logits(run)
    assert np.abs(int8.predict_logits(texts) - saved).max() == pytest.approx(report["max_abs_logit_diff"], abs=1e-5)


def test_a_failed_check_refuses_the_export_and_keeps_the_previous_one(tmp_path):
    run = make_tiny_run(tmp_path, method="lora")
    export_run(run, "onnx")
    before = {p.name: p.read_bytes() for p in (run / "onnx").iterdir()}
    with pytest.raises(ExportError, match="onnx-int8 export: loses .* accuracy points .*raise --max-drop to accept"):
        export_run(run, "onnx-int8", max_drop=-1.0)  # no result passes a negative bound
    with pytest.raises(ExportError, match="onnx export: logits differ from PyTorch .* export refused"):
        export_run(run, "onnx", max_logit_diff=-1.0)
    with pytest.raises(ExportError, match="merged export: logits differ"):
        export_run(run, "merged", max_logit_diff=-1.0)
    assert {p.name: p.read_bytes() for p in (run / "onnx").iterdir()} == before
    assert not (run / "merged").exists() and not leftovers(run)


def test_a_fused_graph_that_fails_its_check_is_left_out_and_the_plain_one_kept(tmp_path, monkeypatch):
    import shutil

    from distilora.inference import export

    other = make_tiny_run(tmp_path, name="other", seed=1)
    export_run(other, "onnx")
    monkeypatch.setattr(export, "fuse_graph",  # a "fusion" that gives another model's graph: its logits differ
                        lambda graph, target, config: shutil.copy(other / "onnx" / "model.onnx", target) and None)
    run = make_tiny_run(tmp_path, seed=0)
    report = export_run(run, "onnx")
    assert report["fused"]["skipped"].startswith("onnx-fused export: logits differ from PyTorch")
    assert report["max_abs_logit_diff"] < 1e-4 and set(report["timings"]) == {"torch", "onnx"}
    assert not (run / "onnx" / "model.fused.onnx").exists() and not leftovers(run)


def test_export_without_labels_compares_with_pytorch_decisions(tmp_path):
    run = make_tiny_run(tmp_path)
    (run / "predictions" / "validation.jsonl").unlink()
    report = export_run(run, "onnx")
    assert report["checked_on"] == "built-in sample sentences" and report["accuracy_against"] == "PyTorch decisions"
    assert report["accuracy_torch"] == 1.0 and report["accuracy_export"] == 1.0


def test_export_command_checks_on_a_labelled_file_and_prints_the_speed_table(tmp_path, monkeypatch, capsys):
    run = make_tiny_run(tmp_path, task="multiclass")
    texts, labels = validation_rows(tmp_path, "multiclass")
    names = ["negative", "neutral", "positive"]
    check = tmp_path / "check.csv"
    check.write_text("text,label\n" + "".join(f"{t},{names[y]}\n" for t, y in zip(texts[:10], labels)))
    code, out, _ = run_cli(monkeypatch, capsys, "export", str(run), "--format", "onnx", "--check-data", str(check))
    assert code == 0
    assert f"checked on 10 texts of {check}" in out and "against gold labels" in out
    assert "samples/s @32" in out and "fastest here:" in out
    lines = {line.split()[0] for line in out.splitlines() if line.split()}
    assert {"torch", "onnx"} <= lines
    assert json.loads((run / "onnx" / "export.json").read_text())["onnx"]["checked_texts"] == 10
    code, _, err = run_cli(monkeypatch, capsys, "export", str(run), "--check-data", str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv" in err and "Traceback" not in err


def test_exports_of_a_run_the_trainer_wrote(tmp_path):
    from distilora.config import build_config
    from distilora.training.runner import train
    from test_train_e2e import tiny_raw

    run = train(build_config(tiny_raw(tmp_path, method="lora", epochs=1, rows=64)))
    assert export_run(run, "merged")["max_abs_logit_diff"] < 1e-4
    report = export_run(run, "onnx")
    assert report["max_abs_logit_diff"] < 1e-4 and report["checked_on"].endswith("validation.jsonl")
    rows = [json.loads(line) for line in (run / "predictions" / "test.jsonl").read_text().splitlines()]
    onnx = Classifier.load(run, backend="onnx")
    np.testing.assert_allclose(onnx.predict_logits([r["text"] for r in rows]), [r["logits"] for r in rows], atol=1e-4)


@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_every_engine_scores_a_text_the_same_whatever_else_is_in_its_batch(tmp_path, task):
    from distilora.inference.invariance import FP32_TOLERANCE, INT8_TOLERANCE, batch_invariance

    run = make_tiny_run(tmp_path, method="lora", task=task)
    report = export_run(run, "onnx-int8")
    stored = json.loads((run / "onnx" / "export.json").read_text())
    texts = [r["text"] for r in RunFolder(run).predictions("validation")]
    for engine, tolerance in (("torch", FP32_TOLERANCE), ("onnx", FP32_TOLERANCE), ("onnx-int8", INT8_TOLERANCE)):
        found = batch_invariance(Classifier.load(run, backend=engine), texts)
        assert found["texts"] == len(texts[:32]) and found["decision_changes"] == 0, (engine, found)
        assert found["max_abs_prob_diff"] <= tolerance, (engine, found)
    assert report["batch_invariance"]["decision_changes"] == 0  # export measures and stores it per graph
    assert stored["onnx"]["batch_invariance"]["max_abs_prob_diff"] <= FP32_TOLERANCE
    assert stored["onnx-int8"]["batch_invariance"]["max_abs_prob_diff"] <= INT8_TOLERANCE


def test_static_int8_scores_do_not_move_with_a_long_neighbour(tmp_path):
    """The audit's case: dynamic int8 gave 'great service' 0.833 alone and 0.855 next to a long text."""
    from distilora.inference.invariance import LONG_TEXT

    run = make_tiny_run(tmp_path, method="full", task="binary")
    export_run(run, "onnx-int8")
    int8 = Classifier.load(run, backend="onnx-int8")
    alone = int8.predict_proba(["great service"])[0]
    beside = int8.predict_proba(["great service", LONG_TEXT], batch_size=2)[0]
    assert np.abs(alone - beside).max() < 1e-5
