"""The run report: one self-contained HTML page (figures embedded, opens offline) and a Markdown summary.

It reads the run folder only (run.json, config, history, predictions, data summary), so it can be re-made at any
time with `distilora report RUN`, also for a run evaluated later on another file. Each section is one function of
the evidence gathered once; the report also writes the split's mistakes as a CSV next to it.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from distilora.errors import RunFolderError
from distilora.evaluation.analysis import accuracy_by_length, confident_mistakes, confused_pairs, mistakes_table
from distilora.evaluation.calibration import reliability_bins
from distilora.evaluation.metrics import (HEADLINE_METRICS, calibration_inputs, classification_report_text, decide,
                                          evaluate_logits, expected_calibration_error, primary_metric, probabilities)
from distilora.evaluation.uncertainty import with_intervals
from distilora.reporting import plots
from distilora.reporting.html_parts import CSS, html_section, html_table, image_tag, markdown_table
from distilora.runfolder import RunFolder, RunInfo, atomic_write_text, write_csv_atomic

Section = tuple[str, str, list[str]]  # title, HTML body, Markdown lines


@dataclass
class Evidence:
    """Everything the sections read, computed once."""

    folder: RunFolder
    info: RunInfo
    split: str
    texts: list[str]
    labels: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    preds: np.ndarray
    metrics: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return self.info.labels

    @property
    def task(self) -> str:
        return self.info.task


def _predictions(folder: RunFolder, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = [r for r in folder.predictions(split) if r.get("label") is not None]
    if not rows:
        raise RunFolderError(f"{folder.predictions_dir / (split + '.jsonl')}: no labelled predictions to report on; "
                             f"run `distilora eval {folder.path} --data FILE` first")
    return [r["text"] for r in rows], np.asarray([r["label"] for r in rows]), np.asarray([r["logits"] for r in rows], dtype=np.float32)


def gather(run_dir: str | Path, split: str | None = None) -> Evidence:
    folder = RunFolder(run_dir)
    info = folder.info()
    split = split or ("test" if folder.predictions("test") else "validation")
    texts, labels, logits = _predictions(folder, split)
    probs = probabilities(info.task, logits, info.temperature)
    metrics = folder.metrics(split)
    if not (metrics and "intervals" in metrics):  # a folder written before splits stored their intervals
        metrics = with_intervals(evaluate_logits(info.task, logits, labels, info.labels, info.temperature,
                                                 info.thresholds), logits, labels)
    return Evidence(folder, info, split, texts, labels, logits, probs, decide(info.task, probs, info.thresholds),
                    metrics)


def write_report(run_dir: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """Write report.html, report.md and the split's mistakes CSV (default split: test if the run has one, else
    validation)."""
    ev = gather(run_dir, split)
    title = ev.folder.run_name
    sections = [build(ev) for build in SECTIONS]
    nav = "".join(f'<a href="#{name.lower().replace(" ", "-")}">{name}</a>' for name, _, _ in sections)
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>distilora report: '
            f'{html.escape(title)}</title><style>{CSS}</style></head><body><header><h1>distilora report: '
            f'{html.escape(title)}</h1><p>{html.escape(ev.info.method)} on {html.escape(ev.info.backbone)} · '
            f'{html.escape(ev.task)} · split {html.escape(ev.split)}</p><nav>{nav}</nav></header><main>'
            + "".join(html_section(name, body) for name, body, _ in sections) + '</main></body></html>')
    md = [f"# distilora report: {title}", "", f"Split: **{ev.split}** ({ev.metrics['n']} texts)", ""]
    for _, _, lines in sections:
        md += lines
    atomic_write_text(ev.folder.report_html, page)
    atomic_write_text(ev.folder.report_md, "\n".join(md) + "\n")
    return ev.folder.report_html, ev.folder.report_md


def _seconds(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:,.0f} s ({value / 60:.1f} min)" if value >= 60 else f"{value:.1f} s"


def warnings_for(ev: Evidence) -> list[str]:
    """What a reader must know before trusting the numbers."""
    notes = []
    if ev.split == "validation":
        notes.append("These figures are on the validation split, which chose the checkpoint, the threshold(s) and the "
                     "temperature: they are optimistic. Set data.test (or data.test_fraction) for a held-out figure.")
    if not ev.info.validation_held_out:
        notes.append("Nothing was held out (data.validation_fraction 0): 'validation' is the training data.")
    calibration = ev.info.calibration
    if calibration and not calibration.get("kept"):
        notes.append(f"Temperature scaling was not used: {calibration.get('why')}.")
    return notes


def overview(ev: Evidence) -> Section:
    info = ev.info
    rows = [("task", info.task), ("labels", ", ".join(info.labels)), ("method", info.method), ("backbone", info.backbone),
            ("trainable / total parameters", f"{info.trainable_params or 0:,} / {info.total_params or 0:,}"),
            ("training time", _seconds(info.train_seconds)),
            ("training speed", f"{info.train_samples_per_second:,.1f} texts/s" if info.train_samples_per_second else None),
            ("peak memory", f"{info.peak_rss_mb:,.0f} MiB resident" if info.peak_rss_mb else None),
            ("processes", info.processes if info.processes > 1 else None),
            ("best step (chosen on validation)", info.best_step),
            ("threshold(s) (chosen on validation)", info.thresholds),
            ("temperature (fitted on validation)", f"{info.temperature:.3f}"),
            ("student layers", info.student_layers), ("auxiliary targets", info.aux_names), ("created", info.created)]
    table = [{"field": k, "value": v if not isinstance(v, list) else ", ".join(
        f"{x:.3f}" if isinstance(x, float) else str(x) for x in v)} for k, v in rows if v is not None]
    notes = warnings_for(ev)
    body = "".join(f'<p class="warning">{html.escape(n)}</p>' for n in notes) + html_table(table, ["field", "value"])
    return "Overview", body, ["## Overview", "", *[f"> {n}" for n in notes], "", markdown_table(table, ["field", "value"]), ""]


def data(ev: Evidence) -> Section:
    summary = _read_json(ev.folder.data_summary_json)
    if not (summary and summary.get("splits")):
        return "Data", '<p class="note">No data summary in this run folder.</p>', []
    stats = [{"split": s, "rows": d["rows"], **{f"words {k}": d["words"][k] for k in ("min", "p50", "p90", "max")}}
             for s, d in summary["splits"].items()]
    body = html_table(stats, list(stats[0])) + image_tag(plots.class_counts(summary), "class counts")
    body += image_tag(plots.length_histogram(summary), "text lengths")
    return "Data", body, ["## Data", "", markdown_table(stats, list(stats[0])), ""]


def training(ev: Evidence) -> Section:
    history = ev.folder.history()
    if not history:
        return "Training", '<p class="note">No training history in this run folder.</p>', []
    figure = plots.learning_curves(history, primary_metric(ev.task), ev.info.best_step)
    note = (f'<p class="note">{len(history)} evaluations on validation; the dashed line marks the step whose weights '
            f'were kept (best validation {primary_metric(ev.task)}).</p>')
    return "Training", note + image_tag(figure, "learning curves"), []


def results(ev: Evidence) -> Section:
    stored = ev.metrics["intervals"]
    sure = stored["metrics"]
    cards = "".join(f'<div class="card"><b>{ev.metrics[k]:.4f}</b><span>{k.replace("_", " ")}</span>'
                    + (f'<small>95%: {sure[k]["low"]:.3f}-{sure[k]["high"]:.3f}</small>' if k in sure else "")
                    + '</div>' for k in HEADLINE_METRICS if isinstance(ev.metrics.get(k), float))
    text = classification_report_text(ev.metrics, ev.names)
    table = [{"metric": m, "value": v["value"], "95% interval": f"{v['low']:.4f} - {v['high']:.4f}"}
             for m, v in sure.items()]
    how = (f"How sure: 95% is each figure's bootstrap interval over {stored['resamples']:,} resamples of these "
           f"{ev.metrics['n']:,} texts: another sample of this many texts would move the figure about this much. "
           "To tell two runs apart, score them on the same texts: `distilora compare` pairs them, which is tighter.")
    body = (f'<p class="note">Split <b>{html.escape(ev.split)}</b>, {ev.metrics["n"]:,} texts</p>'
            f'<div class="cards">{cards}</div><pre>{html.escape(text)}</pre>'
            f'<p class="note">{html.escape(how)}</p>')
    md = ["## Results", "", "```", text, "```", "", how, "", markdown_table(table, list(table[0])), ""]
    return "Results", body, md


def _curve_inputs(ev: Evidence) -> tuple[np.ndarray, np.ndarray]:
    """The gold labels as a 0/1 matrix [n, classes], and the scores that go with it."""
    if ev.task == "multilabel":
        return ev.labels.astype(int), ev.probs
    return np.eye(len(ev.names), dtype=int)[ev.labels.astype(int)], ev.probs


def confusion(ev: Evidence) -> Section:
    if ev.task != "multilabel":
        return "Confusion matrix", image_tag(plots.confusion(ev.metrics["confusion_matrix"], ev.names), "confusion matrix"), []
    per_label = [{"label": n, **ev.metrics["per_class"][n]} for n in ev.names]
    body = '<p class="note">Multi-label: each label is its own yes/no decision; per-label scores below.</p>'
    return "Confusion matrix", body + html_table(per_label, ["label", "precision", "recall", "f1", "support", "roc_auc",
                                                             "pr_auc"]), []


def curves(ev: Evidence) -> Section:
    y, scores = _curve_inputs(ev)
    names = ev.names
    if ev.task == "binary":
        names, y, scores = names[1:], y[:, 1:], scores[:, 1:]
    return "ROC and PR curves", image_tag(plots.roc_pr(y, scores, names), "ROC and PR"), []


def distributions(ev: Evidence) -> Section:
    if ev.task == "multilabel":
        return "Probability distributions", '<p class="note">Per-label score distributions are summarised by the per-label AUCs above.</p>', []
    score, score_name = ((ev.probs[:, 1], f"P({ev.names[1]})") if ev.task == "binary"
                         else (ev.probs.max(1), "confidence of the predicted class"))
    figure = plots.probability_distribution(ev.labels.astype(int), score, ev.names, score_name)
    return "Probability distributions", image_tag(figure, "probabilities"), []


def calibration(ev: Evidence) -> Section:
    raw_conf, raw_ok = calibration_inputs(ev.task, probabilities(ev.task, ev.logits, 1.0), ev.labels)
    cal_conf, cal_ok = calibration_inputs(ev.task, ev.probs, ev.labels)
    ece_raw, ece_cal = expected_calibration_error(raw_conf, raw_ok), expected_calibration_error(cal_conf, cal_ok)
    line = f"Temperature {ev.info.temperature:.3f} (fitted on validation); ECE {ece_raw:.4f} before, {ece_cal:.4f} after."
    figure = plots.reliability(reliability_bins(raw_conf, raw_ok), reliability_bins(cal_conf, cal_ok), ece_raw, ece_cal)
    return ("Calibration", f'<p class="note">{line} The numbers on the points are texts per bin.</p>'
            + image_tag(figure, "reliability diagram"), ["## Calibration", "", line, ""])


def thresholds(ev: Evidence) -> Section:
    if ev.task == "multiclass":
        return "Thresholds", '<p class="note">Multi-class decisions take the most probable class; there is no threshold.</p>', []
    y, scores = _curve_inputs(ev)
    shown = [1] if ev.task == "binary" else list(range(min(len(ev.names), 4)))
    body = "".join(image_tag(plots.threshold_curve(y[:, j], scores[:, j],
                                                   ev.info.thresholds[j if ev.task == "multilabel" else 0],
                                                   ev.names[j]), f"threshold {ev.names[j]}") for j in shown)
    return "Thresholds", body, []


def errors(ev: Evidence) -> Section:
    lengths = accuracy_by_length(ev.texts, ev.labels.astype(int), ev.preds)
    length_columns = ["words", "n", "accuracy"]
    if ev.task == "multilabel":
        return ("Error analysis", '<h3>Accuracy (all labels right) by text length</h3>' + html_table(lengths, length_columns),
                ["## Error analysis", "", markdown_table(lengths, length_columns), ""])
    table = mistakes_table(ev.texts, ev.labels.astype(int), ev.probs, ev.preds, ev.names)
    csv_path = ev.folder.errors_csv(ev.split)
    write_csv_atomic(csv_path, table, ["row", "true", "predicted", "p_true", "p_predicted", "text"])
    mistakes = confident_mistakes(table)
    pairs = confused_pairs(ev.metrics["confusion_matrix"], ev.names)
    pair_columns, mistake_columns = ["true", "predicted", "count", "share of true class"], ["confidence", "true", "predicted", "text"]
    body = (f'<p class="note">All {len(table):,} mistakes of this split, with the probability given to the true class, '
            f'are in <a href="{csv_path.name}">{csv_path.name}</a>.</p>'
            + "<h3>Most confident mistakes</h3>" + html_table(mistakes, mistake_columns, ("text",))
            + "<h3>Most confused class pairs</h3>" + html_table(pairs, pair_columns)
            + "<h3>Accuracy by text length (words)</h3>" + html_table(lengths, length_columns))
    md = ["## Error analysis", "", f"All mistakes: `{csv_path.name}`.", "", "Most confused pairs:", "",
          markdown_table(pairs, pair_columns), "", "Most confident mistakes:", "",
          markdown_table(mistakes[:10], mistake_columns), "", markdown_table(lengths, length_columns), ""]
    return "Error analysis", body, md


def configuration(ev: Evidence) -> Section:
    path = ev.folder.config_yaml
    text = path.read_text(encoding="utf-8") if path.is_file() else "(no config.yaml in this run folder)"
    return ("Configuration", '<p class="note">The resolved config that trained this run (every field, defaults '
            f'included): retrain with <code>distilora train {html.escape(path.as_posix())}</code>.</p>'
            f'<pre>{html.escape(text)}</pre>', ["## Configuration", "", "```yaml", text.rstrip(), "```", ""])


SECTIONS: list[Callable[[Evidence], Section]] = [overview, data, training, results, confusion, curves, distributions,
                                                  calibration, thresholds, errors, configuration]


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
