"""Test metrics of every trial of a finished `distilora sweep`, as one results JSON (beside the sweep's own
results.md, which ranks trials by one metric): F1, precision, recall, PR-AUC, ROC-AUC, accuracy, macro F1, threshold
and training time per trial, read from the trials' run folders.

    python bench/sweep_table.py sweeps/toxicchat-eight toxicchat_eight
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

METRICS = ("f1", "precision", "recall", "pr_auc", "roc_auc", "accuracy", "macro_f1")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    from distilora.runfolder import RunFolder

    sweep, name = Path(sys.argv[1]), sys.argv[2]
    rows = []
    for trial in sorted(p for p in (sweep / "trials").iterdir() if (p / "run.json").is_file()):
        folder = RunFolder(trial)
        info, metrics = folder.info(), folder.metrics("test") or {}
        settings = dict(part.split("=", 1) for part in trial.name.split(","))
        rows.append({**settings, **{k: metrics.get(k) for k in METRICS},
                     "threshold": (info.thresholds or [None])[0], "train_seconds": info.train_seconds})
    if not rows:
        sys.exit(f"{sweep}: no finished trials")
    print_table(rows, list(rows[0]))
    print(f"wrote {write_results(name, {'sweep': str(sweep), 'rows': rows})}")


if __name__ == "__main__":
    main()
