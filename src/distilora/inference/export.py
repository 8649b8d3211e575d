"""Export a run for fast inference: merged weights, ONNX (fp32) and static int8 ONNX.

Every export checks the files it wrote against the PyTorch model (largest logit difference, accuracy on labelled
texts, and that a text's scores do not depend on its batch) and refuses, leaving nothing behind, when they drift
past the bounds. ONNX exports also time each engine
here, since which one is fastest depends on the CPU and the batch size.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from distilora.errors import ExportError
from distilora.inference.classifier import ONNX_FILES, Classifier
from distilora.inference.fusion import fuse_graph, quiet_onnxruntime
from distilora.inference.invariance import FP32_TOLERANCE, INT8_TOLERANCE, batch_invariance
from distilora.runfolder import RunFolder, RunInfo, replace_dir_atomic, staging_dir, write_json_atomic

FORMATS = ("merged", "onnx", "onnx-int8")  # onnx also writes the onnx-fused engine where ONNX Runtime can fuse it
FP32_FORMATS = ("merged", "onnx", "onnx-fused")  # these must reproduce the logits; int8 is judged on accuracy only
SAMPLE_TEXTS = ["This is wonderful, thank you so much!", "I want a refund, this is broken.",
                "How do I reset my password?", "ok", "The package arrived a day late but everything works fine " * 3]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "merges.txt",
                   "vocab.json", "sentencepiece.bpe.model", "spiece.model")
CHECK_LIMIT = 256  # validation texts compared per export: enough to see drift, quick on a laptop
CALIBRATION_LIMIT = 1024  # validation texts that fix the static int8 scales (256 cost 0.5 points more on SST-2)


@dataclass
class CheckSet:
    """Texts an export is compared on, with gold labels when known (else the PyTorch decisions are the labels)."""

    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray | None
    source: str


def stored_texts(info: RunInfo, rows: list[dict[str, Any]]) -> tuple[list[str], list[str] | None] | None:
    """(texts, pairs) of stored prediction rows, or None when there are none or a pair run's rows lack the second
    texts (runs from before predictions kept them)."""
    if not rows or (info.text_pair and "text_pair" not in rows[0]):
        return None
    return [r["text"] for r in rows], [r["text_pair"] for r in rows] if info.text_pair else None


def check_set(folder: RunFolder, info: RunInfo, check_data: str | None) -> CheckSet:
    """A labelled file when given, else the run's validation predictions, else a few built-in sentences."""
    if check_data is not None:
        from distilora.config import load_config
        from distilora.data.labels import LabelSpace
        from distilora.data.loading import load_eval_split

        split = load_eval_split(load_config(folder.config_yaml).data, check_data, LabelSpace(tuple(info.labels), info.task))
        return CheckSet(split.texts, split.pairs, split.labels, check_data)
    rows = [r for r in folder.predictions("validation") if r.get("label") is not None][:CHECK_LIMIT]
    stored = stored_texts(info, rows)
    if stored:
        return CheckSet(*stored, np.asarray([r["label"] for r in rows]),
                        str(folder.predictions_dir / "validation.jsonl"))
    pairs = SAMPLE_TEXTS if info.text_pair else None  # a pair run from before predictions kept the second texts
    return CheckSet(SAMPLE_TEXTS, pairs, None,
                    "built-in sample sentences" + (" (each paired with itself)" if pairs else ""))


def compare(info: RunInfo, checks: CheckSet, reference: np.ndarray, exported: np.ndarray) -> dict[str, Any]:
    """Logit drift and accuracy of an export vs PyTorch (accuracy is per label for multi-label tasks)."""
    from distilora.evaluation.metrics import decide, probabilities

    def decisions(logits: np.ndarray) -> np.ndarray:
        return decide(info.task, probabilities(info.task, logits, info.temperature), info.thresholds)

    labels = checks.labels if checks.labels is not None else decisions(reference)
    accuracy_torch = float((decisions(reference) == labels).mean())
    accuracy_export = float((decisions(exported) == labels).mean())
    return {"checked_on": checks.source, "checked_texts": len(checks.texts),
            "accuracy_against": "gold labels" if checks.labels is not None else "PyTorch decisions",
            "max_abs_logit_diff": float(np.abs(exported - reference).max()),
            "accuracy_torch": accuracy_torch, "accuracy_export": accuracy_export,
            "accuracy_drop_points": 100 * (accuracy_torch - accuracy_export)}


def enforce_bounds(fmt: str, report: dict[str, Any], max_logit_diff: float, max_drop: float) -> None:
    """Refuse an export whose logits drift (fp32 formats), whose scores move with the batch, or whose accuracy drops
    past the bounds."""
    invariance = report.get("batch_invariance")
    tolerance = INT8_TOLERANCE if fmt == "onnx-int8" else FP32_TOLERANCE
    if invariance and (invariance["max_abs_prob_diff"] > tolerance or invariance["decision_changes"]):
        raise ExportError(f"{fmt} export: a text's scores change with the other texts in its batch (by up to "
                          f"{invariance['max_abs_prob_diff']:.1e}, bound {tolerance:.0e}; {invariance['decision_changes']} "
                          f"decisions changed); export refused")
    if fmt in FP32_FORMATS and report["max_abs_logit_diff"] > max_logit_diff:
        raise ExportError(f"{fmt} export: logits differ from PyTorch by {report['max_abs_logit_diff']:.2e} on "
                          f"{report['checked_on']} (bound {max_logit_diff:.0e}); export refused")
    if report["accuracy_drop_points"] > max_drop:
        raise ExportError(f"{fmt} export: loses {report['accuracy_drop_points']:.2f} accuracy points on "
                          f"{report['checked_texts']} texts of {report['checked_on']} (bound {max_drop}); export "
                          f"refused (raise --max-drop to accept)")


def copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def export_run(run_dir: str | Path, fmt: str, *, max_logit_diff: float = 1e-3, max_drop: float = 1.0,
               check_data: str | None = None) -> dict[str, Any]:
    """Write one checked export into the run folder (RUN/merged or RUN/onnx); returns what was checked and timed."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    folder = RunFolder(run_dir)
    info = folder.info()
    checks = check_set(folder, info, check_data)
    if fmt == "merged":
        return _export_merged(folder, info, checks, max_logit_diff, max_drop)
    return _export_onnx(folder, info, checks, fmt, max_logit_diff, max_drop)


def _export_merged(folder: RunFolder, info: RunInfo, checks: CheckSet, max_logit_diff: float,
                   max_drop: float) -> dict[str, Any]:
    from distilora.inference.torch_backend import TorchEngine
    from distilora.modeling.backbone import quiet_transformers
    from distilora.modeling.loading import load_model_folder, load_run_model

    if not folder.is_lora:
        raise ExportError(f"{folder.path}: method {info.method} has no adapter to merge; model/ already holds the full "
                          f"weights")
    adapted, _ = load_run_model(folder.path, merge=False)
    reference = Classifier(info, TorchEngine(adapted.get_base_model()), folder.model_dir)  # LoRA active, unmerged
    reference_logits = reference.predict_logits(checks.texts, checks.pairs)
    staging = staging_dir(folder.merged_dir)
    try:
        merged = adapted.merge_and_unload()
        # the decision rule travels with the weights, for people who load the folder without distilora
        merged.config.distilora_temperature = info.temperature
        merged.config.distilora_thresholds = info.thresholds
        with quiet_transformers():
            merged.save_pretrained(staging, safe_serialization=True)
        copy_tokenizer(folder.model_dir, staging)
        with quiet_transformers():
            written = Classifier(info, TorchEngine(load_model_folder(staging)), staging)
        report = {"format": "merged", "path": str(folder.merged_dir),
                  **compare(info, checks, reference_logits, written.predict_logits(checks.texts, checks.pairs))}
        enforce_bounds("merged", report, max_logit_diff, max_drop)
        write_json_atomic(staging / "export.json", report)
        replace_dir_atomic(staging, folder.merged_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _export_onnx(folder: RunFolder, info: RunInfo, checks: CheckSet, fmt: str, max_logit_diff: float,
                 max_drop: float) -> dict[str, Any]:
    from distilora.inference.onnx_backend import OnnxEngine

    reference = Classifier.load(folder.path, backend="torch")
    reference_logits = reference.predict_logits(checks.texts, checks.pairs)
    staging = staging_dir(folder.onnx_dir)
    try:
        if folder.onnx_dir.is_dir():
            shutil.copytree(folder.onnx_dir, staging, dirs_exist_ok=True)
        previous = json.loads((staging / "export.json").read_text(encoding="utf-8")) \
            if (staging / "export.json").is_file() else {}
        copy_tokenizer(folder.model_dir, staging)
        reports: dict[str, dict[str, Any]] = {}
        fp32 = staging / ONNX_FILES["onnx"]
        if fmt == "onnx" or not fp32.is_file():  # int8 is quantised from a checked fp32 graph
            _onnx_export(reference.engine.model, fp32, reference.engine.inputs)
            reports["onnx"] = _check_onnx(info, checks, reference_logits, fp32, staging, "onnx")
            enforce_bounds("onnx", reports["onnx"], max_logit_diff, max_drop)
            reports["onnx-fused"] = _fused_engine(info, checks, reference_logits, reference.engine.model.config,
                                                  staging, max_logit_diff, max_drop)
        if fmt == "onnx-int8":
            int8 = staging / ONNX_FILES["onnx-int8"]
            rows = folder.predictions("validation")[:CALIBRATION_LIMIT]
            texts, pairs = stored_texts(info, rows) or (checks.texts, checks.pairs)
            _quantize_int8(fp32, int8, calibration_batches(reference, texts, pairs))
            reports["onnx-int8"] = _check_onnx(info, checks, reference_logits, int8, staging, "onnx-int8")
            enforce_bounds("onnx-int8", reports["onnx-int8"], max_logit_diff, max_drop)
        engines = {"torch": reference} | {name: Classifier(info, OnnxEngine(staging / file), staging)
                                          for name, file in ONNX_FILES.items() if (staging / file).is_file()}
        timings = {name: time_engine(classifier, checks.texts, checks.pairs) for name, classifier in engines.items()}
        speed = {"timings": timings,
                 "fastest_batch32": max(timings, key=lambda k: timings[k]["samples_per_s_batch32"]),
                 "fastest_one_text": min(timings, key=lambda k: timings[k]["ms_one_text_p50"])}
        write_json_atomic(staging / "export.json", {**previous, **reports, "speed": speed})
        replace_dir_atomic(staging, folder.onnx_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fused = {"fused": reports["onnx-fused"]} if "onnx-fused" in reports else {}
    return {**reports[fmt], **fused, **speed}


def _fused_engine(info: RunInfo, checks: CheckSet, reference_logits: np.ndarray, config: Any, staging: Path,
                  max_logit_diff: float, max_drop: float) -> dict[str, Any]:
    """The fused form of the checked fp32 graph, checked like it. A graph that cannot be fused, or whose fused form
    fails a check, is left out and the report says why: the plain graph serves the same scores."""
    fused = staging / ONNX_FILES["onnx-fused"]
    fused.unlink(missing_ok=True)  # from an earlier export of another graph
    skipped = fuse_graph(staging / ONNX_FILES["onnx"], fused, config)
    if skipped is not None:
        return {"format": "onnx-fused", "skipped": skipped}
    report = _check_onnx(info, checks, reference_logits, fused, staging, "onnx-fused")
    try:
        enforce_bounds("onnx-fused", report, max_logit_diff, max_drop)
    except ExportError as err:
        fused.unlink()
        return {"format": "onnx-fused", "skipped": str(err)}
    return report


def _check_onnx(info: RunInfo, checks: CheckSet, reference_logits: np.ndarray, model_file: Path, tokenizer_dir: Path,
                fmt: str) -> dict[str, Any]:
    from distilora.inference.onnx_backend import OnnxEngine

    exported = Classifier(info, OnnxEngine(model_file), tokenizer_dir)
    return {"format": fmt, "file": model_file.name, "size_mb": round(model_file.stat().st_size / 2**20, 2),
            **compare(info, checks, reference_logits, exported.predict_logits(checks.texts, checks.pairs)),
            "batch_invariance": batch_invariance(exported, checks.texts, checks.pairs)}


def _onnx_export(model, path: Path, inputs: list[str]) -> None:
    """Trace the model to ONNX (opset 17) with dynamic batch and sequence axes and a single 'logits' output."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(inputs, tensors))).logits

    dummy = tuple(torch.zeros((2, 8), dtype=torch.long) if name == "token_type_ids" else
                  torch.ones((2, 8), dtype=torch.long) for name in inputs)
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs} | {"logits": {0: "batch"}}
    with torch.inference_mode(), warnings.catch_warnings(), _eager_attention(model):
        warnings.simplefilter("ignore")  # tracer notes about Python control flow in transformers' masking code
        torch.onnx.export(LogitsOnly().eval(), dummy, str(path), input_names=inputs, output_names=["logits"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)


@contextlib.contextmanager
def _eager_attention(model) -> Iterator[None]:
    """Trace transformers' eager attention instead of its SDPA path. Traced to opset 17, SDPA with a boolean mask
    becomes plain products plus an IsNaN/Where guard over every attention probability. The eager form computes the
    same scores with one additive mask: on IMDB reviews in batches of 32 it ran 1.0-1.3x faster in fp32 and 1.4-1.6x
    in int8 in ONNX Runtime (BENCHMARKS.md, "Long texts on an AMX Xeon")."""
    previous = getattr(model.config, "_attn_implementation", None)
    if previous != "sdpa":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def _quantize_int8(fp32: Path, int8: Path, calibration: list[dict[str, np.ndarray]]) -> None:
    """Static int8: weights per channel, and every activation scale fixed once from calibration batches of the run's
    validation texts. Dynamic quantisation picks activation scales per batch, so a text's score moved with the other
    texts in its batch; with fixed scales it cannot."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    import onnx

    graph = onnx.load(str(fp32)).graph
    widths = {init.name: tuple(init.dims) for init in graph.initializer}
    # only the projections that keep or widen their input (a MatMul with a [in, out] weight, in <= out): the
    # attention products of two activations stay fp32, and so do the narrowing ones (feed-forward down-projections,
    # the classifier), whose post-GELU inputs have the long tails one fixed scale serves worst; on an SST-2 MiniLM
    # quantising those as well cost 0.8 points instead of 0.3 (BENCHMARKS.md)
    projections = [node.name for node in graph.node if node.op_type == "MatMul" and any(
        len(widths.get(name, ())) == 2 and widths[name][0] <= widths[name][1] for name in node.input)]
    with quiet_onnxruntime():
        quantize_static(str(fp32), str(int8), Batches(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                        nodes_to_quantize=projections, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)


def calibration_batches(classifier: Classifier, texts: list[str], pairs: list[str] | None,
                        batch_size: int = 16) -> list[dict[str, np.ndarray]]:
    """The check texts as the padded int64 batches the ONNX graph takes (its own input names only)."""
    from distilora.data.batching import inference_batches, pad_batch
    from distilora.data.tokenize import encode

    encoded = encode(classifier.tokenizer, texts, pairs, classifier.info.max_length)
    names = set(classifier.engine.inputs)
    return [{k: v for k, v in pad_batch(encoded, idx, classifier.pad_id).items() if k in names}
            for idx in inference_batches(encoded.lengths, batch_size)]


def time_engine(classifier: Classifier, texts: list[str], pairs: list[str] | None = None, rounds: int = 3,
                singles: int = 20) -> dict[str, float]:
    """Samples/s on batches of 32 and the median milliseconds to classify one text (or pair), after a warm-up."""
    sample = list(zip(texts, pairs if pairs is not None else [None] * len(texts)))[:64]
    batch = (sample * (32 // len(sample) + 1))[:32]

    def run(items: list[tuple[str, str | None]], batch_size: int) -> None:
        classifier.predict_logits([t for t, _ in items], None if pairs is None else [p for _, p in items], batch_size)

    run(batch, 32)
    start = time.perf_counter()
    for _ in range(rounds):
        run(batch, 32)
    per_batch = (time.perf_counter() - start) / rounds
    single = []
    for item in (sample * singles)[:singles]:
        t0 = time.perf_counter()
        run([item], 1)
        single.append(time.perf_counter() - t0)
    return {"samples_per_s_batch32": round(32 / per_batch, 1), "ms_one_text_p50": round(1000 * float(np.median(single)), 3)}
