"""Layer-dropped students on SST-2, with and without soft targets from a fine-tuned 6-layer teacher run.

For each 3-of-6 layer choice (odd, even, first-3, last-3) a student is trained twice, one epoch on a seeded stratified
subset of SST-2 train, exactly as `distilora distill` builds it:
  KD yes  `distilora distill --teacher RUN --layers odd`: layers copied from the teacher, loss 0.5 * hard + 0.5 *
          soft targets at temperature 2;
  KD no   the same student from the same teacher layers, trained on hard labels only (distill.alpha 1.0), so the
          two rows differ by the soft targets alone.
Validation (checkpoint, threshold, temperature) is a held-out fraction of train; test is SST-2 dev (872). The teacher
and every student are then loaded with Classifier (torch engine) in this process and timed on the dev texts at
batch 32 (best of --repeats); accuracies are measured the same way, with each run's stored threshold.

    python bench/distill.py /tmp/distilora-bench-accuracy/sst2                  # 8 students on 20,000 rows
    python bench/distill.py RUN --rows 5000 --layers odd last-3 --method lora   # a quicker subset
    python bench/distill.py RUN --rows 30000 --layers odd even --kd yes --results distill_sst2_30k
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

LAYER_CHOICES = ("odd", "even", "first-3", "last-3")
SEED = 42


def student_config(args: argparse.Namespace, layers: str, kd: bool, source: Path, teacher_info):
    """The config `distilora distill [--teacher RUN] --layers LAYERS` would train, on the SST-2 files."""
    from distilora.config import build_config

    name = f"{layers}-{'kd' if kd else 'hard'}-{args.method}"
    return build_config({
        "name": name, "output_dir": str(args.work / name),
        "data": {"train": str(require_data("sst2", "train.tsv")), "test": str(require_data("sst2", "dev.tsv")),
                 "text_column": "sentence", "label_column": "label", "quoting": "none",
                 "validation_fraction": args.val_fraction, "train_size": args.rows,
                 "max_length": teacher_info.max_length, "seed": SEED},
        "model": {"backbone": teacher_info.backbone, "method": args.method},
        "train": {"epochs": 1, "batch_size": 32, "seed": SEED, "checkpoint_every": 100_000},
        "eval": {"report": False},
        "distill": {"student_layers": layers,
                    "teacher": str(source), "alpha": 0.5 if kd else 1.0, "temperature": 2.0}})


def measure(run: Path, texts: list[str], gold: np.ndarray, repeats: int) -> dict:
    """Dev accuracy, inference params and torch-engine samples/s at batch 32 (best of ``repeats`` passes)."""
    from distilora.inference.classifier import Classifier

    clf = Classifier.load(run, backend="torch")
    clf.predict(texts[:32], batch_size=32)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        preds = clf.predict(texts, batch_size=32)
        best = min(best, time.perf_counter() - start)
    accuracy = float(np.mean([p.label == clf.labels[int(g)] for p, g in zip(preds, gold)]))
    return {"params": sum(p.numel() for p in clf.engine.model.parameters()), "test_accuracy": accuracy,
            "samples_per_s_b32": len(texts) / best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher", type=Path, help="finished distilora run folder trained on SST-2 (6 layers)")
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (seeded, stratified subset)")
    parser.add_argument("--val-fraction", type=float, default=0.02, help="share of SST-2 train held out for validation")
    parser.add_argument("--method", choices=["full", "lora"], default="full", help="how students are trained")
    parser.add_argument("--layers", nargs="+", choices=LAYER_CHOICES, default=list(LAYER_CHOICES))
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over dev per model (best is kept)")
    parser.add_argument("--kd", choices=["both", "yes", "no"], default="both", help="train with soft targets, without, or both")
    parser.add_argument("--results", default="distill_sst2", help="name of the JSON file in bench/results")
    parser.add_argument("--work", type=Path, default=Path("/tmp/distilora-bench-distill"))
    args = parser.parse_args()
    import pandas as pd

    dev = pd.read_csv(require_data("sst2", "dev.tsv"), sep="\t", quoting=csv.QUOTE_NONE, dtype={"sentence": str})
    require_data("sst2", "train.tsv")
    if not (args.teacher / "run.json").is_file():
        print(f"skipped: {args.teacher} is not a finished run folder (train one first, e.g. "
              f"`python bench/accuracy.py sst2`)")
        sys.exit(0)

    from distilora.errors import DistiloraError
    from distilora.runfolder import RunFolder
    from distilora.training.runner import train

    teacher_info = RunFolder(args.teacher).info()
    runs = []
    try:
        for layers in args.layers:
            for kd in {"both": (True, False), "yes": (True,), "no": (False,)}[args.kd]:
                print(f"training {layers} student, KD {'yes' if kd else 'no'} ...", flush=True)
                runs.append((layers, kd, train(student_config(args, layers, kd, args.teacher, teacher_info),
                                                overwrite=True)))
    except DistiloraError as err:
        sys.exit(f"error: {err}")

    texts, gold = dev.sentence.tolist(), dev.label.to_numpy()
    print("timing teacher and students on SST-2 dev ...", flush=True)
    teacher = measure(args.teacher, texts, gold, args.repeats)
    rows = [{"student": "teacher", "kd": "-", "layers": "all", **teacher, "size_reduction_pct": 0.0,
             "pct_of_teacher_acc": 100.0, "train_s": None, "speedup_x": 1.0}]  # trained on other data
    for layers, kd, run in runs:
        info = RunFolder(run).info()
        m = measure(run, texts, gold, args.repeats)
        rows.append({"student": f"{layers}{'+KD' if kd else ''}", "kd": "yes" if kd else "no",
                     "layers": ",".join(map(str, info.student_layers)), **m,
                     "size_reduction_pct": 100 * (1 - m["params"] / teacher["params"]),
                     "pct_of_teacher_acc": 100 * m["test_accuracy"] / teacher["test_accuracy"],
                     "train_s": info.train_seconds, "speedup_x": m["samples_per_s_b32"] / teacher["samples_per_s_b32"],
                     "run": str(run)})
    print()
    print_table(rows, ["student", "kd", "layers", "params", "size_reduction_pct", "test_accuracy", "pct_of_teacher_acc",
                       "train_s", "samples_per_s_b32", "speedup_x"])
    best = max(rows[1:], key=lambda r: (r["test_accuracy"], r["samples_per_s_b32"]))
    print(f"best student: {best['student']} (layers {best['layers']}): accuracy {best['test_accuracy']:.4f}, "
          f"{best['pct_of_teacher_acc']:.1f}% of the teacher's {teacher['test_accuracy']:.4f}, "
          f"{best['size_reduction_pct']:.0f}% fewer params, {best['speedup_x']:.2f}x the teacher's speed")
    path = write_results(args.results, {"teacher": str(args.teacher), "teacher_method": teacher_info.method,
                                          "teacher_train_seconds": teacher_info.train_seconds,
                                          "train_rows": args.rows, "val_fraction": args.val_fraction,
                                          "student_method": args.method, "test_texts": len(texts),
                                          "kd": {"alpha": 0.5, "temperature": 2.0}, "rows": rows,
                                          "best": best["student"]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
