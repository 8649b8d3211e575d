"""`distilora audit`: the label audit of a config's training file, written as an audit folder.

Reads data.train exactly as training would (same columns, label mapping and checks), embeds its texts with
model.backbone (cached), cross-fits and ranks with cleanlab (label_audit.py), then writes the suspects, a report
and, if asked, a cleaned copy of the training file in its own format that a config can point data.train at.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from distilora.config import RunConfig
from distilora.curation.embeddings import embed_texts
from distilora.curation.label_audit import LabelAudit, audit_labels, head_out_of_fold
from distilora.data.dataset import TextSplit
from distilora.errors import ConfigError, RunFolderError
from distilora.runfolder import AuditFolder, foreign_contents, now_iso, write_json_atomic

CleanMode = Literal["none", "drop", "relabel"]
AuditMethod = Literal["head", "finetune"]


def run_audit(cfg: RunConfig, out_dir: Path, *, folds: int = 5, method: AuditMethod = "head",
              clean: CleanMode = "none", say: Any = print) -> Path:
    """Audit cfg.data.train into ``out_dir``: each file is replaced atomically; fine-tuned folds are kept there."""
    from distilora.data.loading import read_training_file

    if folds < 2:
        raise ConfigError(f"--folds {folds}: cross-fitting needs at least 2 folds")
    folder = AuditFolder(out_dir)
    ours = folder.audit_json.is_file() or folder.folds_dir.is_dir()  # folds/ alone: an audit killed mid-way
    found = [] if ours else foreign_contents(out_dir)
    if found:
        raise RunFolderError(f"{out_dir}: exists and is not an audit folder (holds {', '.join(found)}); "
                             f"choose another --out")
    started = time.perf_counter()
    table, split, space = read_training_file(cfg.data)
    if clean == "relabel" and space.is_multilabel:
        raise ConfigError("--clean relabel: multi-label rows are only dropped, not relabelled; use --clean drop")
    features = embed_texts(cfg.model.backbone, split.texts, split.pairs, max_length=cfg.data.max_length,
                           batch_size=cfg.eval.batch_size)
    if method == "finetune":
        from distilora.curation.fold_runs import finetuned_out_of_fold

        pred_probs = finetuned_out_of_fold(cfg, table, split, folder.folds_dir, folds, say=say)
    else:
        pred_probs = head_out_of_fold(features, split.labels, folds=folds, seed=cfg.data.seed)
    result = audit_labels(pred_probs, split.labels, features, split.texts)
    rows = suspect_rows(result, split, space.names)
    _write_issues_csv(folder.issues_csv, rows)
    summary = {"created": now_iso(), "train": split.source, "rows": len(split), "task": space.task,
               "labels": list(space.names), "backbone": cfg.model.backbone, "method": method, "folds": folds,
               "seed": cfg.data.seed, "label_issues": int(result.is_issue.sum()),
               "conflicting_duplicates": int(sum(bool(c) for c in result.conflicts)),
               "out_of_fold_accuracy": _agreement(result, split.labels), "seconds": time.perf_counter() - started}
    for stale in folder.path.glob(folder.cleaned_stem.name + ".*"):
        stale.unlink()
    if clean != "none":
        from distilora.data.writers import write_like_source

        cleaned = cleaned_table(table, result, split.rows, space.names, cfg, clean)
        written = write_like_source(cleaned, folder.cleaned_stem, split.source, cfg.data)
        summary["cleaned"] = {"mode": clean, "file": written.name, "rows": len(cleaned)}
    write_json_atomic(folder.audit_json, summary)
    from distilora.reporting.audit_report import write_audit_report

    write_audit_report(folder, summary, rows)
    return out_dir


def suspect_rows(result: LabelAudit, split: TextSplit, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """One record per flagged row, worst label quality first, with labels spelled as class names."""
    out = []
    for position in result.ranked():
        conflicts = result.conflicts[position]
        kind = "label" if result.is_issue[position] else "duplicate"
        out.append({"row": int(split.rows[position]), "text": split.texts[position],
                    "given_label": _spelled(split.labels[position], names),
                    "suggested_label": _spelled(result.suggested[position], names),
                    "label_quality": round(float(result.quality[position]), 6),
                    "issue": "label+duplicate" if conflicts and kind == "label" else kind,
                    "conflicts_with_rows": " ".join(str(int(split.rows[c])) for c in conflicts[:10])})
    return out


def _spelled(label: Any, names: tuple[str, ...]) -> str:
    """A class index as its name; a multi-label 0/1 row as its names joined by ';'."""
    if np.ndim(label) == 1:
        return ";".join(name for name, on in zip(names, label) if on)
    return names[int(label)]


def _agreement(result: LabelAudit, labels: np.ndarray) -> float | None:
    """Share of rows whose held-out prediction equals the given label (single-label tasks)."""
    return None if labels.ndim == 2 else round(float((result.suggested == labels).mean()), 4)


def cleaned_table(table: Any, result: LabelAudit, rows: np.ndarray, names: tuple[str, ...], cfg: RunConfig,
                  mode: CleanMode) -> Any:
    """The training table without (drop) or with corrected labels for (relabel) the rows cleanlab flagged."""
    flagged = rows[result.is_issue] - 1  # 1-based data rows -> table positions
    if mode == "drop":
        return table.drop(index=table.index[flagged]).reset_index(drop=True)
    column = cfg.data.label_column
    if not isinstance(column, str):
        raise ConfigError("--clean relabel: needs one label column; use --clean drop")
    fixed = table.copy()
    for position, row in zip(np.flatnonzero(result.is_issue), flagged):
        index = int(result.suggested[position])
        fixed.iloc[row, fixed.columns.get_loc(column)] = str(index) if cfg.data.label_encoding == "index" else names[index]
    return fixed


def _write_issues_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from distilora.runfolder import atomic_write_file

    columns = ["row", "text", "given_label", "suggested_label", "label_quality", "issue", "conflicts_with_rows"]
    atomic_write_file(path, lambda tmp: pd.DataFrame(rows, columns=columns).to_csv(tmp, index=False))
