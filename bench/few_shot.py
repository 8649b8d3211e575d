"""Few-shot: distilora's tiny-data recipe vs SetFit, side by side in one process, same bundled MiniLM backbone, same
labelled texts (n per class drawn with each seed from the training file), same test texts.

    pip install -e ".[bench]"        # SetFit, the peer
    python bench/few_shot.py sst2 agnews --shots 8 16 --seeds 0 1 2
    python bench/few_shot.py sst2 --shots 64 --seeds 0

distilora trains with `data.validation_fraction: 0` (nothing to spare for a held-out split) and its defaults
otherwise (LoRA), with train.few_shot true (distilora) or false (distilora-plain); SetFit runs with its defaults (contrastive pairs,
20 iterations, one epoch, batch 16, logistic-regression head). Test sets: SST-2 dev (872), and a seeded stratified
2,000 of the AG News test set (descriptions only, as in its training subset). Nothing is tuned on a test set.
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

WORK = Path(__file__).resolve().parent / "work" / "few_shot"
AGNEWS_NAMES = ["World", "Sports", "Business", "Sci/Tech"]


def load_task(task: str) -> tuple["object", "object"]:
    """(train, test) tables with columns text, label (label = class name)."""
    import pandas as pd

    if task == "sst2":
        read = dict(sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        train = pd.read_csv(require_data("sst2", "train.tsv"), **read).rename(columns={"sentence": "text"})
        test = pd.read_csv(require_data("sst2", "dev.tsv"), **read).rename(columns={"sentence": "text"})
        names = {"0": "negative", "1": "positive"}
        train["label"], test["label"] = train.label.map(names), test.label.map(names)
        return train[["text", "label"]], test[["text", "label"]]
    train = pd.read_csv(require_data("agnews", "train_subset_alps_dev.tsv"), sep="\t", quoting=csv.QUOTE_NONE,
                        header=None, names=["text", "label"], dtype=str, keep_default_na=False)
    test = pd.read_csv(require_data("agnews", "test.csv"), header=None, names=["class_index", "title", "text"],
                       dtype=str, keep_default_na=False)
    test["label"] = [AGNEWS_NAMES[int(i) - 1] for i in test.class_index]
    test = test.groupby("label").sample(n=500, random_state=0)
    return train[["text", "label"]], test[["text", "label"]].reset_index(drop=True)


def distilora_side(work: Path, task: str, shots: int, seed: int, sample, test, extra: list[str]) -> dict:
    from distilora.config import build_config
    from distilora.runfolder import RunFolder
    from distilora.training.runner import train

    folder = work / task / f"{shots}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    sample.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)  # per run: two benchmark processes never share a test file
    cfg = build_config({"name": f"fewshot-{task}-{shots}-{seed}", "output_dir": str(folder / "run"),
                        "data": {"train": str(folder / "train.csv"), "test": str(folder / "test.csv"),
                                 "validation_fraction": 0, "max_length": 128},
                        "train": {"seed": seed}, "eval": {"report": False}}, extra)
    start = time.perf_counter()
    run = train(cfg, overwrite=True)
    wall = time.perf_counter() - start
    return {"accuracy": RunFolder(run).metrics("test")["accuracy"], "train_seconds": RunFolder(run).info().train_seconds,
            "wall_seconds": wall}


def setfit_side(work: Path, shots: int, seed: int, sample, test) -> dict:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from distilora.modeling.backbone import resolve_backbone

    start = time.perf_counter()
    model = SetFitModel.from_pretrained(resolve_backbone("minilm"))
    # checkpoints out of the current folder, and no tracker (MLflow would otherwise write ./mlflow.db)
    arguments = TrainingArguments(seed=seed, output_dir=str(work / "setfit-checkpoints"), report_to="none")
    trainer = Trainer(model=model, args=arguments,
                      train_dataset=Dataset.from_pandas(sample.reset_index(drop=True)))
    trainer.train()
    seconds = time.perf_counter() - start
    predicted = np.asarray(model.predict(test.text.tolist()))
    return {"accuracy": float((predicted == test.label.to_numpy()).mean()), "train_seconds": seconds,
            "wall_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="+", choices=["sst2", "agnews"])
    parser.add_argument("--shots", nargs="+", type=int, default=[8, 16, 64])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--sides", nargs="+", default=["distilora", "distilora-plain", "setfit"],
                        choices=["distilora", "distilora-plain", "setfit"],
                        help="distilora = train.few_shot true; distilora-plain = the same run without the recipe")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides", help="distilora config overrides")
    parser.add_argument("--name", default=None, help="results file name (default few_shot_<tasks>)")
    parser.add_argument("--selection", action="store_true",
                        help="score on 500 training texts per class held out of the pool instead of the test set: "
                             "for choosing a recipe without looking at the test set")
    parser.add_argument("--selection-min-words", type=int, default=0,
                        help="hold out only training texts of at least this many words (SST-2's training set is mostly "
                             "phrases, median 7 words, its dev set whole sentences, median 19: 10 makes the held-out "
                             "texts read like the test set's)")
    args = parser.parse_args()
    name = args.name or "few_shot_" + "_".join(args.tasks)
    rows = []
    for task in args.tasks:
        train, test = load_task(task)
        if args.selection:
            long_enough = train[train.text.str.split().str.len() >= args.selection_min_words]
            test = long_enough.groupby("label").sample(n=500, random_state=1234)
            train = train.drop(test.index)
            test = test.reset_index(drop=True)
        for shots in args.shots:
            for seed in args.seeds:
                sample = train.groupby("label").sample(n=shots, random_state=seed)
                for side in args.sides:
                    recipe = [f"train.few_shot={'false' if side == 'distilora-plain' else 'true'}"]
                    result = (setfit_side(WORK / name, shots, seed, sample, test) if side == "setfit" else
                              distilora_side(WORK / name, task, shots, seed, sample, test, [*args.overrides, *recipe]))
                    rows.append({"task": task, "shots": shots, "seed": seed, "side": side, **result})
                    print_table(rows[-1:], list(rows[-1]))
    summary = []
    for key in sorted({(r["task"], r["shots"], r["side"]) for r in rows}):
        picked = [r for r in rows if (r["task"], r["shots"], r["side"]) == key]
        accuracy = np.array([r["accuracy"] for r in picked])
        summary.append({"task": key[0], "shots": key[1], "side": key[2], "seeds": len(picked),
                        "accuracy_mean": float(accuracy.mean()), "accuracy_std": float(accuracy.std()),
                        "train_seconds_mean": float(np.mean([r["train_seconds"] for r in picked]))})
    print()
    print_table(summary, list(summary[0]))
    command = "python bench/few_shot.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_results(name, {'command': command, 'runs': rows, 'summary': summary})}")


if __name__ == "__main__":
    main()
