"""Is an ensemble of teachers a better teacher than each of its members? Scores each teacher run, and the mean of
their probabilities (what `distill.ensemble` hands a student, at temperature 1), on one split's saved predictions.

    python bench/teacher_ensemble.py runs/teacher runs/teacher-s43 runs/teacher-s44 --name my_ensemble

Reads only the validation split unless `--split test` asks for the same table on test, to report after a choice.
Metrics on raw logits (no fitted temperature), so every row is scored the same way.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, write_results  # noqa: E402

from distilora.distill.fold_targets import ensemble_logits  # noqa: E402
from distilora.evaluation.metrics import evaluate_logits  # noqa: E402
from distilora.runfolder import RunFolder  # noqa: E402

METRICS = ("macro_f1", "accuracy", "log_loss", "pr_auc")


def _saved(run: Path, split: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    rows = sorted(RunFolder(run).predictions(split), key=lambda r: r["row"])
    if not rows:
        raise SystemExit(f"{run}: no {split} predictions; is it a finished run?")
    return [r["row"] for r in rows], np.asarray([r["logits"] for r in rows]), np.asarray([r["label"] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="teacher run folders trained on the same split")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--name", required=True, help="results file name (bench/results/<name>.json)")
    args = parser.parse_args()
    info = RunFolder(args.runs[0]).info()
    saved = [_saved(run, args.split) for run in args.runs]
    if any(keys != saved[0][0] for keys, _, _ in saved):
        raise SystemExit(f"the runs' {args.split} predictions are not of the same rows: train them on one split")
    labels = saved[0][2]
    scored = [(run.name, logits) for run, (_, logits, _) in zip(args.runs, saved)]
    scored.append((f"ensemble of {len(args.runs)}", ensemble_logits([s[1] for s in saved], 1.0, info.task)))
    rows = []
    for name, logits in scored:
        metrics = evaluate_logits(info.task, logits, labels, info.labels)
        rows.append({"model": name, **{m: metrics.get(m) for m in METRICS}})
    print_table(rows, ["model", *METRICS])
    command = "python bench/teacher_ensemble.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_results(args.name, {'command': command, 'machine': machine(), 'split': args.split, 'rows': rows})}")


if __name__ == "__main__":
    main()
