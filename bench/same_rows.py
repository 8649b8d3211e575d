"""Score runs on the test rows they all predicted: a fair comparison when one run was tested on a sample of another's
test file (e.g. a slow teacher on a seeded 2,000-row sample of the test file its student read whole).

Each run's saved test predictions (predictions/test.jsonl) are kept on the rows common to all runs and scored with
that run's own temperature and thresholds; nothing is re-run.

    python bench/same_rows.py RUN RUN [RUN ...] --name ship_imdb_same_rows
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

COLUMNS = ["accuracy", "macro_f1", "f1", "roc_auc", "pr_auc"]


def scored_on(run: Path, rows: set[int]) -> dict:
    """The run's test metrics on ``rows`` only (rows of the test file)."""
    from distilora.evaluation.metrics import evaluate_logits
    from distilora.runfolder import RunFolder

    folder = RunFolder(run)
    info = folder.info()
    kept = sorted((p for p in folder.predictions("test") if p["row"] in rows), key=lambda p: p["row"])
    labels = np.asarray([p["label"] for p in kept], dtype=np.float32 if info.task == "multilabel" else np.int64)
    logits = np.asarray([p["logits"] for p in kept], dtype=np.float32)
    metrics = evaluate_logits(info.task, logits, labels, info.labels, info.temperature, info.thresholds)
    return {"run": str(run), "rows": len(kept), **{m: metrics.get(m) for m in COLUMNS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--name", required=True, help="Name of the results file: bench/results/<name>.json")
    args = parser.parse_args()
    from distilora.runfolder import RunFolder

    common = set.intersection(*({p["row"] for p in RunFolder(run).predictions("test")} for run in args.runs))
    if not common:
        sys.exit("the runs share no test row")
    rows = [scored_on(run, common) for run in args.runs]
    print_table(rows, ["run", "rows", *COLUMNS])
    command = "python bench/same_rows.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_results(args.name, {'command': command, 'rows': rows})}")


if __name__ == "__main__":
    main()
