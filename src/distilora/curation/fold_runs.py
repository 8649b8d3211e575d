"""Out-of-fold runs: one ordinary distilora run per fold, trained on the other folds with the config's own method and
settings, tested on its fold. The audit's `--method finetune` reads their held-out probabilities; `distilora ship`
with ship.teacher_folds trains its fold teachers this way, whose held-out answers are soft targets the teacher did
not fit.

Each fold is a run folder under FOLDS/fold-<k>/run, so an interrupted job resumes, a finished fold is reused as it is
(its config must match, as for every run), and each fold can be inspected like any run. Rows with the same text share
a fold, so no fold's run has trained on a copy of a text it is asked to score.
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
    from distilora.evaluation.metrics import probabilities
    from distilora.runfolder import RunFolder

    runs, assignment = train_fold_runs(cfg, table, split, folds_dir, folds, say=say)
    out: np.ndarray | None = None
    for fold, run_dir in enumerate(runs):
        run = RunFolder(run_dir)
        info = run.info()
        logits = np.asarray([row["logits"] for row in run.predictions("test")], dtype=np.float32)
        probs = probabilities(info.task, logits, info.temperature)
        if out is None:
            out = np.zeros((len(split), probs.shape[1]), dtype=np.float64)
        out[assignment == fold] = probs
    return out


def train_fold_runs(cfg: RunConfig, table: Any, split: TextSplit, folds_dir: Path, folds: int, *,
                    validation: TextSplit | None = None, say: Any = print) -> tuple[list[Path], np.ndarray]:
    """Train (or reuse) one run per fold on the rows of ``split`` (rows of ``table``); returns the run folders and
    every row's fold. ``validation`` (rows of the same table) picks every fold's checkpoints; without it each fold
    holds out its own share of its training rows, as the config says."""
    from distilora.curation.label_audit import fold_assignment
    from distilora.data.writers import write_like_source
    from distilora.runfolder import fold_dir, fold_run_dir, partial_path
    from distilora.training.runner import finished_run, train

    assignment = same_fold_for_same_text(fold_assignment(split.labels, folds, cfg.data.seed), split.texts)
    validation_file = None if validation is None else write_like_source(
        table.iloc[validation.rows - 1], folds_dir / "validation", split.source, cfg.data)
    positions = split.rows - 1
    runs = []
    for fold in range(int(assignment.max()) + 1):
        files = fold_dir(folds_dir, fold)
        held = assignment == fold
        train_file = write_like_source(table.iloc[positions[~held]], files / "train", split.source, cfg.data)
        held_file = write_like_source(table.iloc[positions[held]], files / "held", split.source, cfg.data)
        fold_cfg = fold_config(cfg, train_file, held_file, fold_run_dir(folds_dir, fold), validation_file)
        if not finished_run(fold_cfg, f"delete {folds_dir} to start the folds again"):
            say(f"fold {fold + 1}: training on {int((~held).sum())} rows, scoring {int(held.sum())}")
            train(fold_cfg, resume=partial_path(fold_cfg.run_dir).is_dir())
        runs.append(fold_cfg.run_dir)
    return runs, assignment


def same_fold_for_same_text(assignment: np.ndarray, texts: list[str]) -> np.ndarray:
    """The assignment with every repeat of a text moved to the fold of its first occurrence."""
    first: dict[str, int] = {}
    out = assignment.copy()
    for i, text in enumerate(texts):
        out[i] = assignment[first.setdefault(text, i)]
    return out


def fold_config(cfg: RunConfig, train_file: Path, held_file: Path, run_dir: Path,
                validation_file: Path | None = None) -> RunConfig:
    """The config of one fold's run: the user's, trained on the other folds and tested on this one."""
    data = cfg.data.model_copy(update={"train": str(train_file), "test": str(held_file), "format": "auto",
                                       "train_size": None, "test_size": None, "test_fraction": 0.0})
    if validation_file is not None:
        data = data.model_copy(update={"validation": str(validation_file)})
    evaluation = cfg.eval.model_copy(update={"report": False})
    return cfg.model_copy(update={"name": f"{cfg.name}-{run_dir.parent.name}", "output_dir": str(run_dir),
                                  "data": data, "eval": evaluation})
