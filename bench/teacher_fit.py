"""What a teacher has to teach a student beyond the labels: how closely its soft targets on the student's training
texts follow those labels, and how its answers on the texts that carry targets only (distill.unlabeled /
distill.augment) spread. Reads the teacher logits from the cache (scoring them first if needed) and the metrics of
the given student runs.

    python bench/teacher_fit.py runs/ship-toxicchat/student runs/ship-toxicchat-augment2 --name teacher_fit_toxicchat
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common import print_table, write_results


def fit_of(run: Path) -> dict:
    """The teacher's targets on one student's training texts (and extra texts), and the student's scores."""
    from distilora.config import load_config
    from distilora.data.loading import load_splits
    from distilora.distill.fold_targets import student_soft_targets
    from distilora.evaluation.metrics import primary_metric, probabilities

    cfg = load_config(run / "config.yaml")
    splits = load_splits(cfg.data, cfg.distill)
    labels, task = splits.train.labels, splits.label_space.task

    logits, extra_logits = student_soft_targets(cfg.distill, splits.train, splits.unlabeled,
                                                batch_size=cfg.eval.batch_size)
    row = {"run": str(run), "train_texts": len(labels),
           "teacher_agrees_with_labels": float((logits.argmax(axis=1) == labels).mean())}
    for temperature in (1.0, cfg.distill.temperature):
        p_true = probabilities(task, logits, temperature)[np.arange(len(labels)), labels]
        row[f"mean_p_label_T{temperature:g}"] = float(p_true.mean())
    extra = splits.unlabeled
    row["extra_texts"] = 0 if extra is None else len(extra)
    if extra is not None:
        extra_probs = probabilities(task, extra_logits)
        row["extra_mean_max_p"] = float(extra_probs.max(axis=1).mean())
        if extra_probs.shape[1] == 2:
            row["extra_share_positive"] = float((extra_probs.argmax(axis=1) == 1).mean())
    for split in ("validation", "test"):
        metrics = json.loads((run / "metrics" / f"{split}.json").read_text())
        row.update({f"{split}_f1": metrics.get(primary_metric(task)), f"{split}_pr_auc": metrics.get("pr_auc")})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="student run folders trained with a teacher")
    parser.add_argument("--name", default="teacher_fit", help="results file name under bench/results")
    args = parser.parse_args()
    rows = [fit_of(run) for run in args.runs]
    print_table(rows, ["run", "teacher_agrees_with_labels", "mean_p_label_T1", "extra_texts", "extra_mean_max_p",
                       "validation_f1", "validation_pr_auc", "test_f1", "test_pr_auc"])
    write_results(args.name, {"command": "python bench/teacher_fit.py "
                              + " ".join(str(r) for r in args.runs) + f" --name {args.name}", "runs": rows})


if __name__ == "__main__":
    main()
