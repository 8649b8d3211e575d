"""Replays the threshold rules of a finished multi-label run on its saved validation and test logits: thresholds
are chosen on validation only, then scored on test. Rules: 0.5 for every label; each label's own best-F1 threshold
(the old default); one shared threshold that maximises micro-F1; and the default since 2026-12-02, where a label
keeps its own threshold only when it beats the shared one on held-out halves of validation.

    python bench/multilabel_thresholds.py RUN [--name goemotions]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402


def scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {"macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(y, predicted, average="micro", zero_division=0)),
            "samples_f1": float(f1_score(y, predicted, average="samples", zero_division=1)),
            "subset_accuracy": float((predicted == y).all(1).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    from distilora.evaluation.metrics import probabilities
    from distilora.evaluation.thresholds import multilabel_f1_thresholds, tune_threshold
    from distilora.runfolder import RunFolder

    folder = RunFolder(args.run)
    info = folder.info()
    if info.task != "multilabel":
        sys.exit(f"error: {args.run} is a {info.task} run; this replay is for multi-label runs")

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
        rows = folder.predictions(split)
        return (np.asarray([r["label"] for r in rows]) >= 0.5,
                probabilities("multilabel", np.asarray([r["logits"] for r in rows]), info.temperature))
    y_val, p_val = arrays("validation")
    y_test, p_test = arrays("test")
    k = y_val.shape[1]
    shared = tune_threshold(y_val.ravel(), p_val.ravel(), "f1")
    rules = {"0.5 for every label": np.full(k, 0.5),
             "own best-F1 threshold per label (old default)": np.array([tune_threshold(y_val[:, j], p_val[:, j], "f1")
                                                                       for j in range(k)]),
             f"one shared threshold ({shared:.3f})": np.full(k, shared),
             "own only where it beats the shared one held out (default)": np.array(multilabel_f1_thresholds(p_val, y_val))}
    rows = []
    for name, thresholds in rules.items():
        rows.append({"rule": name, **scores(y_test, p_test >= thresholds),
                     "labels_off_shared": int((np.abs(thresholds - shared) > 1e-12).sum()),
                     "threshold_min": float(thresholds.min()), "threshold_max": float(thresholds.max())})
    print_table(rows, ["rule", "macro_f1", "micro_f1", "samples_f1", "subset_accuracy", "labels_off_shared",
                       "threshold_min", "threshold_max"])
    path = write_results(f"multilabel_thresholds_{args.name or folder.path.name}",
                         {"run": str(args.run), "validation_rows": int(len(y_val)), "test_rows": int(len(y_test)),
                          "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
