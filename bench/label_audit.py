"""Label audit on real data with planted noise: flip 5% of the training labels (seeded), audit the noisy file, and
measure how many of the flipped rows the audit ranks first; then train on the clean, the noisy and the cleaned
file and compare test scores. Also lists the top suspects of the real, unflipped Jigsaw and ToxicChat training sets.

    python bench/label_audit.py sst2 toxicchat --methods head finetune --train
    python bench/label_audit.py --suspects            # top 20 of the real Jigsaw and ToxicChat training sets

Precision/recall at k: of the k rows the audit ranks worst (k = number flipped), the share that were flipped, and
the share of the flipped rows among them. Work files go to bench/work/audit/ (ignored by git).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, print_table, require_data, write_results  # noqa: E402

WORK = Path(__file__).resolve().parent / "work" / "audit"
FLIP_SHARE = 0.05
TASKS = {
    "sst2": {"file": ("sst2", "train.tsv"), "rows": 10_000, "text": "sentence", "label": "label",
             "data": {"labels": ["negative", "positive"], "label_encoding": "index", "quoting": "none",
                      "max_length": 64, "test": str(DATA / "sst2" / "dev.tsv")},
             "train": {"epochs": 1, "batch_size": 32}},
    "toxicchat": {"file": ("toxicchat0124", "toxicchat0124_human_train.csv"), "rows": None, "text": "user_input",
                  "label": "toxicity",
                  "data": {"max_length": 128, "test": str(DATA / "toxicchat0124" / "toxicchat0124_human_test.csv"),
                           "validation_fraction": 0.15},
                  "train": {"epochs": 2, "batch_size": 16, "class_weights": "auto"}},
}


def noisy_files(task: str) -> tuple[Path, Path, set[int]]:
    """(clean file, noisy file, 1-based rows flipped), written once under bench/work/audit/<task>/."""
    import pandas as pd

    spec = TASKS[task]
    source = require_data(*spec["file"])
    quoting = csv.QUOTE_NONE if spec["data"].get("quoting") == "none" else csv.QUOTE_MINIMAL
    sep = "\t" if source.suffix == ".tsv" else ","
    table = pd.read_csv(source, sep=sep, quoting=quoting, dtype=str, keep_default_na=False)
    if spec["rows"]:
        table = table.sample(n=spec["rows"], random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(table), int(round(FLIP_SHARE * len(table))), replace=False)
    noisy = table.copy()
    noisy.loc[flipped, spec["label"]] = ["0" if v == "1" else "1" for v in noisy.loc[flipped, spec["label"]]]
    folder = WORK / task
    folder.mkdir(parents=True, exist_ok=True)
    clean_path, noisy_path = folder / f"clean{source.suffix}", folder / f"noisy{source.suffix}"
    for frame, path in ((table, clean_path), (noisy, noisy_path)):
        frame.to_csv(path, sep=sep, index=False, quoting=quoting, lineterminator="\n")
    return clean_path, noisy_path, {int(r) + 1 for r in flipped}


def config(task: str, train_file: Path, name: str, extra: list[str] | None = None):
    from distilora.config import build_config

    spec = TASKS[task]
    return build_config({"name": name, "output_dir": str(WORK / task / "runs" / name),
                         "data": {"train": str(train_file), "text_column": spec["text"], "label_column": spec["label"],
                                  **spec["data"]},
                         "model": {"method": "full"}, "train": spec["train"], "eval": {"report": False}}, extra)


def audit_scores(task: str, noisy: Path, flipped: set[int], method: str) -> dict:
    from distilora.curation.audit import run_audit

    cfg = config(task, noisy, f"audit-{method}", ["train.epochs=1"])
    out = run_audit(cfg, WORK / task / f"audit-{method}", method=method, clean="drop")
    with (out / "issues.csv").open(encoding="utf-8", newline="") as handle:
        issues = list(csv.DictReader(handle))
    ranked = [int(r["row"]) for r in issues if r["issue"] != "duplicate"]
    k = len(flipped)
    hits = len(set(ranked[:k]) & flipped)
    flagged_hits = len(set(ranked) & flipped)
    import json

    summary = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    return {"task": task, "method": method, "rows": summary["rows"], "flipped": k, "precision_at_k": hits / k,
            "recall_at_k": hits / k, "flagged": len(ranked),
            "flagged_precision": flagged_hits / max(len(ranked), 1), "flagged_recall": flagged_hits / k,
            "out_of_fold_accuracy": summary["out_of_fold_accuracy"], "audit_seconds": round(summary["seconds"], 1),
            "cleaned_file": str(out / summary["cleaned"]["file"])}


def train_scores(task: str, files: dict[str, Path]) -> list[dict]:
    from distilora.runfolder import RunFolder
    from distilora.training.runner import finished_run, train

    rows = []
    for name, path in files.items():
        cfg = config(task, path, f"train-{name}")
        if not finished_run(cfg, "delete bench/work/audit to start again"):
            train(cfg, resume=Path(str(cfg.run_dir) + ".partial").is_dir())
        metrics = RunFolder(cfg.run_dir).metrics("test")
        rows.append({"task": task, "train_file": name, "test_n": metrics["n"], "accuracy": metrics["accuracy"],
                     "f1": metrics["f1"], "train_seconds": RunFolder(cfg.run_dir).info().train_seconds})
    return rows


def real_suspects() -> list[dict]:
    from distilora.config import build_config
    from distilora.curation.audit import run_audit

    sets = {"jigsaw": (("jigsaw_toxic", "train_part1_text_comment_1.csv"), "comment_text", "labels"),
            "toxicchat": (("toxicchat0124", "toxicchat0124_human_train.csv"), "user_input", "toxicity")}
    rows = []
    for name, (parts, text, label) in sets.items():
        cfg = build_config({"name": f"real-{name}", "data": {"train": str(require_data(*parts)), "text_column": text,
                                                             "label_column": label, "max_length": 128}})
        out = run_audit(cfg, WORK / f"real-{name}")
        with (out / "issues.csv").open(encoding="utf-8", newline="") as handle:
            for rank, row in enumerate(list(csv.DictReader(handle))[:20], start=1):
                rows.append({"set": name, "rank": rank, "row": row["row"], "given": row["given_label"],
                             "suggested": row["suggested_label"], "quality": float(row["label_quality"]),
                             "text": " ".join(row["text"].split())[:160]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="*", help=f"noisy-label tasks: {', '.join(sorted(TASKS))}")
    parser.add_argument("--methods", nargs="+", default=["head"], choices=["head", "finetune"])
    parser.add_argument("--train", action="store_true", help="Also train on clean / noisy / cleaned files.")
    parser.add_argument("--suspects", action="store_true", help="Top 20 suspects of real Jigsaw and ToxicChat.")
    args = parser.parse_args()
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task {unknown[0]!r}; choose from {', '.join(sorted(TASKS))}")
    audits, trained = [], []
    for task in args.tasks:
        clean, noisy, flipped = noisy_files(task)
        for method in args.methods:
            audits.append(audit_scores(task, noisy, flipped, method))
            print_table(audits[-1:], list(audits[-1])[:-1])
        if args.train:
            trained += train_scores(task, {"clean": clean, "noisy": noisy,
                                           "cleaned": Path(audits[-1]["cleaned_file"])})
            print_table(trained, list(trained[0]))
    payload = {"command": "python bench/label_audit.py " + " ".join(sys.argv[1:]), "audits": audits,
               "training": trained}
    if args.suspects:
        payload["real_suspects"] = real_suspects()
    name = "label_audit_" + "_".join(args.tasks + (["suspects"] if args.suspects else []))
    print(f"wrote {write_results(name, payload)}")


if __name__ == "__main__":
    main()
