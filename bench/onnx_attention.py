"""ONNX attention form, side by side: a run's graph traced through transformers' SDPA attention (what distilora
exported before 2026-12-03) and through its eager attention (what it exports now), fp32 and static int8, and the
eager graph after ONNX Runtime's own transformer fusion, with the PyTorch engine (fp32, bf16) as the reference, on
the same texts, in one process.

Per engine: samples/s over the texts in batches of 32 (length-sorted, as `distilora predict` batches them), the
largest logit difference from PyTorch fp32, how far a text's probability moves with its batch (the export's
batch-invariance check, on the first 32 texts), and for the ONNX graphs the three operators ONNX Runtime spent most
time in on one full batch (its profiler).

    python bench/onnx_attention.py RUN --rows 256        # IMDB test reviews at the run's max_length
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, require_data, write_results  # noqa: E402

CALIBRATION_TEXTS = 128  # the run's validation texts that fix the int8 scales (the export takes up to 1,024)


def imdb_texts(rows: int) -> list[str]:
    import pandas as pd

    texts = pd.read_csv(require_data("imdb", "test_subset12500_seed0.csv")).review.tolist()
    return [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:rows]]


def export_graphs(classifier, folder: Path, calibration_texts: list[str]) -> dict[str, Path]:
    """fp32 and int8 graphs of the same model, traced once through each attention form."""
    from distilora.inference import export
    from distilora.inference.fusion import fuse_graph

    model, inputs = classifier.engine.model, classifier.engine.inputs
    calibration = export.calibration_batches(classifier, calibration_texts, None)
    graphs = {}
    for form in ("sdpa", "eager"):
        fp32, int8 = folder / f"{form}.onnx", folder / f"{form}.int8.onnx"
        if form == "sdpa":  # the form before: trace whatever attention the model was loaded with
            with mock.patch.object(export, "_eager_attention", lambda _model: contextlib.nullcontext()):
                export._onnx_export(model, fp32, inputs)
        else:
            export._onnx_export(model, fp32, inputs)
        export._quantize_int8(fp32, int8, calibration)
        graphs[f"onnx fp32, {form}-traced"], graphs[f"onnx int8, {form}-traced"] = fp32, int8
    fused = folder / "eager.fused.onnx"  # ONNX Runtime's fusion, as `distilora export` writes model.fused.onnx
    skipped = fuse_graph(folder / "eager.onnx", fused, model.config)
    if skipped is None:
        graphs["onnx fp32, eager-traced, ORT-fused"] = fused
    else:
        print(f"no fused row: {skipped}")
    return graphs


def top_operators(graph: Path, batch: dict[str, np.ndarray], inputs: list[str]) -> list[str]:
    """The three operators ONNX Runtime spent most kernel time in on one batch, with their share."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(graph.with_suffix(""))
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    session.run(["logits"], {name: batch[name] for name in inputs})
    spent = collections.Counter()
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] += event["dur"]
    total = sum(spent.values())
    return [f"{op} {100 * us / total:.0f}%" for op, us in spent.most_common(3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--name", default="onnx_attention_imdb")
    args = parser.parse_args()
    texts = imdb_texts(args.rows)

    from distilora.data.tokenize import encode
    from distilora.inference.classifier import Classifier
    from distilora.inference.export import calibration_batches
    from distilora.inference.invariance import batch_invariance
    from distilora.inference.onnx_backend import OnnxEngine
    from distilora.runfolder import RunFolder

    folder = RunFolder(args.run)
    reference = Classifier.load(args.run, backend="torch")
    validation = [row["text"] for row in folder.predictions("validation")][:CALIBRATION_TEXTS]
    graphs = export_graphs(reference, Path(tempfile.mkdtemp(prefix="onnx-attention-")), validation)
    engines = {"torch fp32": reference, "torch bf16": Classifier.load(args.run, backend="torch-bf16")}
    engines |= {name: Classifier(reference.info, OnnxEngine(path), folder.model_dir)
                for name, path in graphs.items()}
    longest = calibration_batches(reference, texts, None, batch_size=32)[-1]
    rows, expected = [], None
    for name, classifier in engines.items():
        classifier.predict_logits(texts[:32], batch_size=32)  # warm-up
        start = time.perf_counter()
        logits = classifier.predict_logits(texts, batch_size=32)
        seconds = time.perf_counter() - start
        expected = logits if expected is None else expected
        rows.append({"engine": name, "samples_per_s_b32": round(len(texts) / seconds, 2),
                     "max_abs_logit_diff": float(np.abs(logits - expected).max()),
                     "batch_max_prob_diff": batch_invariance(classifier, texts)["max_abs_prob_diff"],
                     "top_operators": ", ".join(top_operators(graphs[name], longest, classifier.engine.inputs))
                     if name in graphs else ""})
    print_table(rows, list(rows[0]))
    tokens = encode(reference.tokenizer, texts, None, reference.info.max_length).lengths
    payload = {"run": str(args.run), "texts": len(texts), "mean_tokens": float(np.mean(tokens)),
               "max_length": reference.info.max_length, "rows": rows}
    print(f"wrote {write_results(args.name, payload)}")


if __name__ == "__main__":
    main()
