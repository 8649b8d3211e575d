"""The SetFit peer for a finished distilora run: SetFit on exactly the run's training split and backbone, scored on
its test split, for tasks where a user with a few hundred labelled texts per task would reach for SetFit.

    pip install -e ".[bench]"        # SetFit
    python bench/setfit_baseline.py RUN_FOLDER [--iterations 20] [--name RESULTS_NAME]

The splits come from distilora's own loader with the run's config (same seed, same sampling), so both sides see the
same training and test texts; SetFit does not use the validation split. SetFit's body is tuned on contrastive pairs
(`num_iterations` partners of each kind per text, one epoch, batch 16: the pair count SetFit used before 1.0; its
1.x default draws every pair, oversampling the rarer kind: 768,074 pairs for the 910 unsafe-topic prompts) and its
head is a logistic regression.
The distilora side is read back from the run folder (trained earlier on this machine, not in this process).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mb, print_table, require_data, require_finished_run, write_results  # noqa: E402
from trainer_baseline import distilora_side, test_metrics  # noqa: E402


def run_setfit(run: Path, iterations: int) -> dict:
    """Train SetFit on the run's training split and score its test split."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from distilora.config import load_config
    from distilora.data.loading import load_splits
    from distilora.modeling.backbone import resolve_backbone

    cfg = load_config(run / "config.yaml")
    splits = load_splits(cfg.data)
    if splits.label_space.is_multilabel or splits.test is None:
        sys.exit(f"{run}: the SetFit peer needs a single-label task with a test split")
    start = time.perf_counter()
    model = SetFitModel.from_pretrained(resolve_backbone(cfg.model.backbone))
    arguments = TrainingArguments(seed=cfg.train.seed, num_iterations=iterations, report_to="none",
                                  output_dir=str(Path("/tmp") / f"setfit-baseline-{run.name}"))
    train = Dataset.from_dict({"text": splits.train.texts, "label": splits.train.labels.tolist()})
    Trainer(model=model, args=arguments, train_dataset=train).train()
    seconds = time.perf_counter() - start
    probs = np.asarray(model.predict_proba(splits.test.texts, as_numpy=True), dtype=np.float64)
    return {"side": f"SetFit ({iterations} iterations)", **test_metrics(splits.test.labels, probs),
            "train_seconds": seconds, "train_rows": len(splits.train), "test_rows": len(splits.test),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished distilora run folder (single-label, with a test split)")
    parser.add_argument("--iterations", type=int, default=20,
                        help="SetFit num_iterations (pairs of each kind per text)")
    parser.add_argument("--name", default=None, help="results file name under bench/results (default: none written)")
    args = parser.parse_args()
    require_finished_run(args.run)
    require_data()
    ours, peer = distilora_side(args.run), run_setfit(args.run, args.iterations)
    columns = ["side", "accuracy", "macro_f1", "train_seconds"]
    print_table([peer, ours], columns)
    if args.name:
        payload = {"run": str(args.run), "command": "python bench/setfit_baseline.py " + " ".join(sys.argv[1:]),
                   "rows": [peer, ours]}
        print(f"wrote {write_results(args.name, payload)}")


if __name__ == "__main__":
    main()
