"""Export a run for fast inference: merged weights, ONNX (fp32) and dynamic int8 ONNX.

Every export checks itself against the PyTorch model (largest logit difference, accuracy on labelled texts) and
refuses, leaving nothing behind, when it drifts past the bounds. It also times each available engine here, since
the fastest one depends on the CPU and the batch size.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from distilora.errors import ExportError
from distilora.runfolder import RunFolder, replace_dir_atomic, staging_dir, write_json_atomic

FORMATS = ("merged", "onnx", "onnx-int8")
SAMPLE_TEXTS = ["This is wonderful, thank you so much!", "I want a refund, this is broken.",
                "How do I reset my password?", "ok", "The package arrived a day late but everything works fine " * 3]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def _check_texts(folder: RunFolder, limit: int = 256) -> tuple[list[str], np.ndarray | None]:
    """Texts (and gold labels) to check an export on: the run's validation predictions, else built-in sentences."""
    rows = [r for r in folder.predictions("validation") if r.get("label") is not None][:limit]
    if not rows:
        return SAMPLE_TEXTS, None
    return [r["text"] for r in rows], np.asarray([r["label"] for r in rows])


def _accuracy(task: str, logits: np.ndarray, labels: np.ndarray, info) -> float:
    from distilora.evaluation.metrics import decide, probabilities

    preds = decide(task, probabilities(task, logits, info.temperature), info.thresholds)
    return float((preds == labels).mean())


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def _export_merged(folder: RunFolder) -> dict[str, Any]:
    from distilora.modeling.backbone import quiet_transformers
    from distilora.modeling.loading import load_run_model

    if not folder.is_lora:
        raise ExportError(f"{folder.path}: method {folder.info().method} has no adapter to merge; model/ already holds "
                          f"full weights")
    model, _ = load_run_model(folder.path, merge=True)
    staging = staging_dir(folder.merged_dir)
    try:
        with quiet_transformers():
            model.save_pretrained(staging, safe_serialization=True)
        _copy_tokenizer(folder.model_dir, staging)
        replace_dir_atomic(staging, folder.merged_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"path": str(folder.merged_dir)}


def _onnx_export(model, path: Path, takes_token_types: bool) -> None:
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.model(**inputs).logits

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_token_types else [])
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) if n != "token_type_ids" else torch.zeros((2, 8), dtype=torch.long)
                  for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    import warnings

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python control flow in transformers' masking code
        torch.onnx.export(LogitsOnly().eval(), dummy, str(path), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)


def _time_engine(classifier, texts: list[str]) -> dict[str, float]:
    batch = (texts * (32 // max(len(texts), 1) + 1))[:32]
    classifier.predict_logits(batch, batch_size=32)  # warm-up
    start = time.perf_counter()
    rounds = 3
    for _ in range(rounds):
        classifier.predict_logits(batch, batch_size=32)
    per_batch = (time.perf_counter() - start) / rounds
    single = []
    for text in (texts * 10)[:20]:
        t0 = time.perf_counter()
        classifier.predict_logits([text])
        single.append(time.perf_counter() - t0)
    return {"samples_per_s_batch32": 32 / per_batch, "ms_one_text_p50": 1000 * float(np.median(single))}


def export_run(run_dir: str | Path, fmt: str, *, max_logit_diff: float = 1e-3, max_drop: float = 1.0,
               check_data: str | None = None) -> dict[str, Any]:
    """Write one export into the run folder after checking it; returns what was checked and measured."""
    from distilora.inference.classifier import Classifier

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    folder = RunFolder(run_dir)
    info = folder.info()
    if fmt == "merged":
        result = _export_merged(folder)
        write_json_atomic(folder.merged_dir / "export.json", result)
        return result

    texts, labels = _check_texts(folder)
    if check_data is not None:
        from distilora.config import load_config
        from distilora.data.labels import LabelSpace
        from distilora.data.loading import load_eval_split

        split = load_eval_split(load_config(folder.config_yaml).data, check_data, LabelSpace(tuple(info.labels), info.task))
        texts, labels = split.texts, split.labels
    reference = Classifier.load(folder.path, backend="torch")
    ref_logits = reference.predict_logits(texts)
    staging = staging_dir(folder.onnx_dir)
    try:
        if folder.onnx_dir.is_dir():
            shutil.copytree(folder.onnx_dir, staging, dirs_exist_ok=True)
        _copy_tokenizer(folder.model_dir, staging)
        fp32 = staging / "model.onnx"
        if fmt == "onnx" or not fp32.is_file():
            _onnx_export(reference.engine.model, fp32, "token_type_ids" in reference.engine.inputs)
        target = fp32
        if fmt == "onnx-int8":
            import logging

            from onnxruntime.quantization import QuantType, quantize_dynamic

            target = staging / "model.int8.onnx"
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # onnxruntime logs a generic pre-processing hint at WARNING
            try:
                quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=False)
            finally:
                root.setLevel(level)
        from distilora.inference.engines import OnnxEngine

        exported = Classifier(info, OnnxEngine(target), staging)
        logits = exported.predict_logits(texts)
        report: dict[str, Any] = {"format": fmt, "file": target.name, "checked_texts": len(texts),
                                  "max_abs_logit_diff": float(np.abs(logits - ref_logits).max())}
        if labels is not None:
            report["accuracy_torch"] = _accuracy(info.task, ref_logits, labels, info)
            report["accuracy_export"] = _accuracy(info.task, logits, labels, info)
            report["accuracy_drop_points"] = 100 * (report["accuracy_torch"] - report["accuracy_export"])
        if fmt == "onnx" and report["max_abs_logit_diff"] > max_logit_diff:
            raise ExportError(f"{folder.path}: ONNX logits differ from PyTorch by {report['max_abs_logit_diff']:.2e} "
                              f"(bound {max_logit_diff:.0e}); export refused")
        if report.get("accuracy_drop_points", 0.0) > max_drop:
            raise ExportError(f"{folder.path}: {fmt} loses {report['accuracy_drop_points']:.2f} accuracy points on "
                              f"{len(texts)} checked texts (bound {max_drop}); export refused (raise --max-drop to accept)")
        report["size_mb"] = round(target.stat().st_size / 2**20, 1)
        timings = {"torch": _time_engine(reference, texts[:64])}
        for name, file in (("onnx", fp32), ("onnx-int8", staging / "model.int8.onnx")):
            if file.is_file():
                timings[name] = _time_engine(Classifier(info, OnnxEngine(file), staging), texts[:64])
        report["timings"] = timings
        report["fastest_batch32"] = max(timings, key=lambda k: timings[k]["samples_per_s_batch32"])
        report["fastest_one_text"] = min(timings, key=lambda k: timings[k]["ms_one_text_p50"])
        previous = json.loads((staging / "export.json").read_text()) if (staging / "export.json").is_file() else {}
        write_json_atomic(staging / "export.json", {**previous, fmt: report})
        replace_dir_atomic(staging, folder.onnx_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report
