"""Inference speed and accuracy, side by side: transformers.pipeline vs distilora's torch, ONNX and int8 engines.

Same trained model (the run's merged weights for the pipeline), same texts, same machine, one process:
samples/s at batch 1 and 32, p50/p99 latency of one text, accuracy, and batch invariance (the largest change of a
text's probabilities between scoring it alone and in a batch; see distilora/inference/invariance.py). The dynamic
int8 graph distilora exported before static quantisation is rebuilt here from the same fp32 graph, for comparison.

    python bench/inference_speed.py RUN --data sst2            # SST-2 dev (872 sentences)
    python bench/inference_speed.py RUN --data imdb --rows 1000
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, require_data, write_results  # noqa: E402


def load_texts(name: str, rows: int | None) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    if name == "sst2":
        frame = pd.read_csv(require_data("sst2", "dev.tsv"), sep="\t", quoting=csv.QUOTE_NONE)
        texts, labels = frame.sentence.tolist(), frame.label.to_numpy()
    else:
        frame = pd.read_csv(require_data("imdb", "test_subset12500_seed0.csv"))
        texts, labels = frame.review.tolist(), frame.label.to_numpy()
    if rows:
        pick = np.random.default_rng(0).permutation(len(texts))[:rows]
        texts, labels = [texts[i] for i in pick], labels[pick]
    return texts, labels


def measure(name: str, one, many, texts: list[str], labels: np.ndarray, latency_n: int) -> dict:
    one(texts[0]), many(texts[:32])  # warm-up
    start = time.perf_counter()
    preds = many(texts)
    batch_rate = len(texts) / (time.perf_counter() - start)
    latencies = []
    for text in texts[:latency_n]:
        t0 = time.perf_counter()
        one(text)
        latencies.append(1000 * (time.perf_counter() - t0))
    return {"engine": name, "samples_per_s_b32": batch_rate, "samples_per_s_b1": 1000 / np.mean(latencies),
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "accuracy": float((np.asarray(preds) == labels).mean())}


def dynamic_int8(folder, info):
    """The old export: dynamic int8 quantisation of the same fp32 graph (activation scales chosen per batch)."""
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from distilora.inference.classifier import Classifier
    from distilora.inference.onnx_backend import OnnxEngine

    path = Path(tempfile.mkdtemp()) / "model.dynamic-int8.onnx"
    quantize_dynamic(str(folder.onnx_dir / "model.onnx"), str(path), weight_type=QuantType.QInt8, per_channel=False)
    return Classifier(info, OnnxEngine(path), folder.onnx_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", choices=["sst2", "imdb"], default="sst2")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--name", default=None, help="results file name (default inference_<data>)")
    args = parser.parse_args()
    texts, labels = load_texts(args.data, args.rows)

    from transformers import pipeline

    from distilora.inference.classifier import Classifier
    from distilora.inference.export import export_run
    from distilora.inference.invariance import batch_invariance
    from distilora.runfolder import RunFolder

    folder = RunFolder(args.run)
    info = folder.info()
    if folder.is_lora and not folder.merged_dir.is_dir():
        export_run(args.run, "merged")
    for fmt, file in (("onnx", "model.onnx"), ("onnx-int8", "model.int8.onnx")):
        if not (folder.onnx_dir / file).is_file():
            export_run(args.run, fmt, max_drop=100)
    model_dir = folder.merged_dir if folder.merged_dir.is_dir() else folder.model_dir
    pipe = pipeline("text-classification", model=str(model_dir), device=-1)
    kwargs = {"truncation": True, "max_length": info.max_length}
    positive = info.labels[1]

    def pipe_one(text):
        return int(pipe(text, **kwargs)[0]["label"] == positive)

    def pipe_many(batch):
        return [int(r["label"] == positive) for r in pipe(batch, batch_size=32, **kwargs)]

    rows = [measure("transformers.pipeline fp32", pipe_one, pipe_many, texts, labels, args.latency_n)]
    engines = {backend: Classifier.load(args.run, backend=backend) for backend in ("torch", "onnx", "onnx-int8")}
    engines["onnx-int8 dynamic (before)"] = dynamic_int8(folder, info)
    for backend, clf in engines.items():
        idx = clf.labels.index(positive)

        def one(text, clf=clf, idx=idx):
            return int(clf.predict([text], batch_size=1)[0].label == clf.labels[idx])

        def many(batch, clf=clf, idx=idx):
            return [int(p.label == clf.labels[idx]) for p in clf.predict(batch, batch_size=32)]

        row = measure(f"distilora {backend}", one, many, texts, labels, args.latency_n)
        row["batch_max_prob_diff"] = batch_invariance(clf, texts)["max_abs_prob_diff"]
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["x_pipeline_b32"] = row["samples_per_s_b32"] / base["samples_per_s_b32"]
        row["accuracy_delta_pts"] = 100 * (row["accuracy"] - base["accuracy"])
    print_table(rows, list(rows[0]))
    name = args.name or f"inference_{args.data}"
    print(f"wrote {write_results(name, {'run': str(args.run), 'texts': len(texts), 'rows': rows})}")


if __name__ == "__main__":
    main()
