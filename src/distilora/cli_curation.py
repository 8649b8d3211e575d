"""The data-centric commands: `distilora audit` (likely label errors) and `distilora select` (what to label next)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from distilora.cli_options import Backend, FileSetOpt, FileTextColumnOpt, SetOpt, file_mapping

StrategyOpt = Literal["uncertainty", "margin", "entropy", "diverse", "random"]  # curation.selection.STRATEGIES


def audit(target: Annotated[Optional[Path], typer.Argument(help="YAML config, or a run folder (its config is "
                                                           "used); empty = defaults.")] = None,
          set_: SetOpt = None,
          folds: Annotated[int, typer.Option(help="Cross-fitting folds: each row is judged by a head that never saw "
                                                  "it.")] = 5,
          method: Annotated[Literal["head", "finetune"], typer.Option(
              help="head = logistic regression on frozen sentence embeddings (seconds); finetune = one ordinary "
                   "run per fold with the config's training settings (better, k trainings).")] = "head",
          out: Annotated[Optional[Path], typer.Option(help="Audit folder (default runs/<name>-audit).")] = None,
          clean: Annotated[Literal["none", "drop", "relabel"], typer.Option(
              help="Also write the training file without (drop) or with corrected labels for (relabel) the "
                   "flagged rows, in its own format.")] = "none") -> None:
    """Find likely label errors in data.train (out-of-fold probabilities ranked by cleanlab) and near-duplicate
    texts with different labels; writes issues.csv, a report and optionally a cleaned training file."""
    import json

    from distilora.config import load_config
    from distilora.curation.audit import run_audit
    from distilora.runfolder import AuditFolder, default_audit_dir

    config_path = target / "config.yaml" if target is not None and target.is_dir() else target
    cfg = load_config(config_path, set_)
    folder = AuditFolder(run_audit(cfg, out or default_audit_dir(cfg.run_dir), folds=folds, method=method,
                                       clean=clean, say=typer.echo))
    summary = json.loads(folder.audit_json.read_text(encoding="utf-8"))
    typer.echo(f"{summary['rows']} rows audited with {summary['folds']} folds: {summary['label_issues']} likely "
               f"label errors, {summary['conflicting_duplicates']} rows in near-duplicates with different labels")
    if "cleaned" in summary:
        typer.echo(f"cleaned training file ({summary['cleaned']['mode']}, {summary['cleaned']['rows']} rows): "
                   f"{folder.path / summary['cleaned']['file']}")
    typer.echo(f"suspects: {folder.issues_csv}\nreport: {folder.report_html}")


def select_texts(run: Annotated[Path, typer.Argument(help="Run folder whose model scores the pool.")],
                 pool: Annotated[str, typer.Option("--pool", help="Unlabelled texts: CSV/TSV/JSONL/Parquet (the run's "
                                                   "text column, or --text-column), or .txt (one per line).")],
                 k: Annotated[int, typer.Option("--k", help="How many texts to select.")] = 100,
                 strategy: Annotated[StrategyOpt, typer.Option(help="uncertainty, margin, entropy, diverse "
                                                               "(uncertain and spread out) or random.")] = "diverse",
                 output: Annotated[Optional[Path], typer.Option(help="Where to write them (default: "
                                                                "<pool>-selected, same format).")] = None,
                 backend: Annotated[Backend, typer.Option(help="Engine that scores the pool.")] = "torch",
                 seed: Annotated[int, typer.Option(help="Seed for random and diverse.")] = 0,
                 text_column: FileTextColumnOpt = None,
                 set_: FileSetOpt = None) -> None:
    """Rank unlabelled texts by how much labelling them should teach the model; writes the top k, best first."""
    from distilora.curation.select_pool import select_from_pool

    written, count = select_from_pool(run, pool, k, strategy, output, backend=backend, seed=seed,
                                      data_overrides=file_mapping(text_column, set_))
    typer.echo(f"wrote {count} texts to label ({strategy}) to {written}")
