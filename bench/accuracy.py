"""Accuracy on real data with the example configs: trains each, prints test/validation metrics and wall time.

    python bench/accuracy.py                 # imdb and toxicchat (sst2 is covered by bench/train_speed.py)
    python bench/accuracy.py sst2 imdb toxicchat
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, require_data, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NEEDS = {"sst2": ("sst2", "train.tsv"), "imdb": ("imdb", "train.csv"),
         "toxicchat": ("toxicchat0124", "toxicchat0124_human_train.csv")}


def main() -> None:
    from distilora.config import load_config
    from distilora.runfolder import RunFolder
    from distilora.training.runner import train

    import os

    os.chdir(ROOT)  # the example configs name data relative to the repository root
    names = sys.argv[1:] or ["imdb", "toxicchat"]
    rows = []
    for name in names:
        require_data(*NEEDS[name])
        config = load_config(ROOT / "examples" / name / "config.yaml",
                             [f"output_dir=/tmp/distilora-bench-accuracy/{name}"])
        start = time.perf_counter()
        run = train(config, overwrite=True)
        wall = time.perf_counter() - start
        folder = RunFolder(run)
        split = "test" if folder.metrics("test") else "validation"
        m = folder.metrics(split)
        info = folder.info()
        rows.append({"data": name, "split": split, "n": m["n"], "accuracy": m["accuracy"], "f1": m.get("f1"),
                     "precision": m.get("precision"), "recall": m.get("recall"), "roc_auc": m.get("roc_auc"),
                     "pr_auc": m.get("pr_auc"), "threshold": (info.thresholds or [None])[0],
                     "train_s": info.train_seconds, "wall_s": wall})
        print_table(rows[-1:], list(rows[-1]))
    print()
    print_table(rows, list(rows[0]))
    print(f"wrote {write_results('accuracy_' + '_'.join(names), {'rows': rows})}")


if __name__ == "__main__":
    main()
