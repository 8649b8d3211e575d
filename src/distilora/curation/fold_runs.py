"""Out-of-fold probabilities from fine-tuning: one ordinary distilora run per fold, trained on the other folds with
the config's own method and settings, tested on its fold. The audit's `--method finetune`.

Each fold is a run folder under AUDIT/folds/fold-<k>/run, so an interrupted audit resumes, a finished fold is
reused as it is (its config must match, as for every run), and each fold can be inspected like any run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from distilora.config import RunConfig
from distilora.data.dataset import TextSplit


def finetuned_out_of_fold(cfg: RunConfig, table: Any, split: TextSplit, folds_dir: Path, folds: int,
                          say: Any = print) -> np.ndarray:
    """[n, classes] held-out probabilities of every training row, one fine-tuned run per fold."""
    from distilora.curation.label_audit import fold_assignment
    from distilora.data.writers import write_like_source
    from distilora.evaluation.metrics import probabilities
    from distilora.runfolder import RunFolder, partial_path
    from distilora.training.runner import finished_run, train

    assignment = fold_assignment(split.labels, folds, cfg.data.seed)
    positions = split.rows - 1
    out: np.ndarray | None = None
    for fold in range(int(assignment.max()) + 1):
        fold_dir = folds_dir / f"fold-{fold}"
        held = assignment == fold
        train_file = write_like_source(table.iloc[positions[~held]], fold_dir / "train", split.source, cfg.data)
        held_file = write_like_source(table.iloc[positions[held]], fold_dir / "held", split.source, cfg.data)
        fold_cfg = fold_config(cfg, train_file, held_file, fold_dir / "run")
        if not finished_run(fold_cfg, "delete the audit's folds/ folder to start the folds again"):
            say(f"fold {fold + 1}: training on {int((~held).sum())} rows, scoring {int(held.sum())}")
            train(fold_cfg, resume=partial_path(fold_cfg.run_dir).is_dir())
        run = RunFolder(fold_cfg.run_dir)
        info = run.info()
        logits = np.asarray([row["logits"] for row in run.predictions("test")], dtype=np.float32)
        probs = probabilities(info.task, logits, info.temperature)
        if out is None:
            out = np.zeros((len(split), probs.shape[1]), dtype=np.float64)
        out[held] = probs
    return out


def fold_config(cfg: RunConfig, train_file: Path, held_file: Path, run_dir: Path) -> RunConfig:
    """The config of one fold's run: the user's, trained on the other folds and tested on this one."""
    data = cfg.data.model_copy(update={"train": str(train_file), "test": str(held_file), "format": "auto",
                                       "train_size": None, "test_size": None, "test_fraction": 0.0})
    evaluation = cfg.eval.model_copy(update={"report": False})
    return cfg.model_copy(update={"name": f"{cfg.name}-{run_dir.parent.name}", "output_dir": str(run_dir),
                                  "data": data, "eval": evaluation})
