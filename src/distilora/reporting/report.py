"""The run report: one self-contained HTML page (figures embedded, opens offline) and a Markdown summary.

It reads the run folder only (run.json, history, predictions, data summary), so it can be re-made at any time
with `distilora report RUN`, also for a run evaluated later on another file.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from distilora.errors import RunFolderError
from distilora.evaluation.analysis import accuracy_by_length, confident_mistakes, confused_pairs
from distilora.evaluation.calibration import reliability_bins
from distilora.evaluation.metrics import (HEADLINE_METRICS, calibration_inputs, classification_report_text, decide,
                                          evaluate_logits, expected_calibration_error, primary_metric, probabilities)
from distilora.reporting import plots
from distilora.reporting.html_parts import CSS, html_section, html_table, image_tag, markdown_table
from distilora.runfolder import RunFolder, RunInfo, atomic_write_text

SECTIONS = ["Overview", "Data", "Training", "Results", "Confusion matrix", "ROC and PR curves",
            "Probability distributions", "Calibration", "Thresholds", "Error analysis"]


def _overview_rows(info: RunInfo, folder: RunFolder) -> list[dict[str, Any]]:
    rows = [("task", info.task), ("labels", ", ".join(info.labels)), ("method", info.method), ("backbone", info.backbone),
            ("trainable / total parameters", f"{info.trainable_params or 0:,} / {info.total_params or 0:,}"),
            ("training time (s)", info.train_seconds), ("training samples/s", info.train_samples_per_second),
            ("best step", info.best_step), ("threshold(s)", info.thresholds), ("temperature", info.temperature),
            ("student layers", info.student_layers), ("auxiliary targets", info.aux_names), ("created", info.created)]
    return [{"field": k, "value": v if not isinstance(v, list) else ", ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in v)}
            for k, v in rows if v is not None]


def _predictions(folder: RunFolder, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = [r for r in folder.predictions(split) if r.get("label") is not None]
    if not rows:
        raise RunFolderError(f"{folder.predictions_dir / (split + '.jsonl')}: no labelled predictions to report on; "
                             f"run `distilora eval {folder.path} --data FILE` first")
    return [r["text"] for r in rows], np.asarray([r["label"] for r in rows]), np.asarray([r["logits"] for r in rows], dtype=np.float32)


def write_report(run_dir: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """Write report.html and report.md for one split (default: test if the run has one, else validation)."""
    folder = RunFolder(run_dir)
    info = folder.info()
    split = split or ("test" if folder.predictions("test") else "validation")
    texts, labels, logits = _predictions(folder, split)
    task, names = info.task, info.labels
    probs = probabilities(task, logits, info.temperature)
    preds = decide(task, probs, info.thresholds)
    metrics = evaluate_logits(task, logits, labels, names, info.temperature, info.thresholds)
    main_metric = primary_metric(task)
    title = folder.path.name.removesuffix(".partial")  # reports are written just before the run folder is renamed
    html_parts: list[str] = []
    md: list[str] = [f"# distilora report: {title}", "", f"Split: **{split}** ({metrics['n']} texts)", ""]

    html_parts.append(html_section("Overview", html_table(_overview_rows(info, folder), ["field", "value"])))
    md += ["## Overview", "", markdown_table(_overview_rows(info, folder), ["field", "value"]), ""]

    summary = _read_json(folder.data_summary_json)
    if summary and summary.get("splits"):
        stats = [{"split": s, "rows": d["rows"], **{f"words {k}": d["words"][k] for k in ("min", "p50", "p90", "max")}}
                 for s, d in summary["splits"].items()]
        body = html_table(stats, list(stats[0])) + image_tag(plots.class_counts(summary), "class counts")
        body += image_tag(plots.length_histogram(summary), "text lengths")
        md += ["## Data", "", markdown_table(stats, list(stats[0])), ""]
    else:
        body = '<p class="note">No data summary in this run folder.</p>'
    html_parts.append(html_section("Data", body))

    history = folder.history()
    html_parts.append(html_section("Training", image_tag(plots.learning_curves(history, main_metric), "learning curves")
                               if history else '<p class="note">No training history in this run folder.</p>'))

    cards = "".join(f'<div class="card"><b>{metrics[k]:.4f}</b><span>{k}</span></div>'
                    for k in HEADLINE_METRICS
                    if isinstance(metrics.get(k), float))
    report_text = classification_report_text(metrics, names)
    html_parts.append(html_section("Results", f'<p class="note">Split <b>{html.escape(split)}</b>, {metrics["n"]} texts</p>'
                               f'<div class="cards">{cards}</div><pre>{html.escape(report_text)}</pre>'))
    md += ["## Results", "", "```", report_text, "```", ""]

    if task == "multilabel":
        per_label = [{"label": n, **{k: v for k, v in metrics["per_class"][n].items()}} for n in names]
        body = '<p class="note">Multi-label: one 2x2 matrix per label; per-label scores below.</p>'
        body += html_table(per_label, ["label", "precision", "recall", "f1", "support", "roc_auc", "pr_auc"])
        y_matrix, score_matrix = labels.astype(int), probs
    else:
        body = image_tag(plots.confusion(metrics["confusion_matrix"], names), "confusion matrix")
        y_matrix = np.eye(len(names), dtype=int)[labels.astype(int)]
        score_matrix = probs
    html_parts.append(html_section("Confusion matrix", body))
    curve_names, curve_y, curve_s = (names[1:], y_matrix[:, 1:], score_matrix[:, 1:]) if task == "binary" else (names, y_matrix, score_matrix)
    html_parts.append(html_section("ROC and PR curves", image_tag(plots.roc_pr(curve_y, curve_s, curve_names), "ROC and PR")))

    if task == "multilabel":
        dist = '<p class="note">Per-label score distributions are summarised by the per-label AUCs above.</p>'
    else:
        score, score_name = (probs[:, 1], f"P({names[1]})") if task == "binary" else (probs.max(1), "confidence of the predicted class")
        dist = image_tag(plots.probability_distribution(labels.astype(int), score, names, score_name), "probabilities")
    html_parts.append(html_section("Probability distributions", dist))

    raw_conf, raw_ok = calibration_inputs(task, probabilities(task, logits, 1.0), labels)
    cal_conf, cal_ok = calibration_inputs(task, probs, labels)
    ece_raw, ece_cal = expected_calibration_error(raw_conf, raw_ok), expected_calibration_error(cal_conf, cal_ok)
    html_parts.append(html_section("Calibration", f'<p class="note">Temperature {info.temperature:.3f} (fitted on validation).'
                               f' ECE {ece_raw:.4f} before, {ece_cal:.4f} after.</p>'
                               + image_tag(plots.reliability(reliability_bins(raw_conf, raw_ok), reliability_bins(cal_conf, cal_ok),
                                                        ece_raw, ece_cal), "reliability diagram")))
    md += ["## Calibration", "", f"Temperature {info.temperature:.3f}; ECE {ece_raw:.4f} before, {ece_cal:.4f} after.", ""]

    if task == "multiclass":
        body = '<p class="note">Multi-class decisions take the most probable class; there is no threshold.</p>'
    else:
        shown = [1] if task == "binary" else list(range(min(len(names), 4)))
        body = "".join(image_tag(plots.threshold_curve(y_matrix[:, j], score_matrix[:, j], info.thresholds[j if task == "multilabel" else 0],
                                                  names[j]), f"threshold {names[j]}") for j in shown)
    html_parts.append(html_section("Thresholds", body))

    if task == "multilabel":
        lengths = accuracy_by_length(texts, labels.astype(int), preds)
        errors = '<h3>Accuracy (all labels right) by text length</h3>' + html_table(lengths, ["words", "n", "accuracy"])
        md += ["## Error analysis", "", markdown_table(lengths, ["words", "n", "accuracy"]), ""]
    else:
        mistakes = confident_mistakes(texts, labels.astype(int), probs, preds, names)
        pairs = confused_pairs(metrics["confusion_matrix"], names)
        lengths = accuracy_by_length(texts, labels.astype(int), preds)
        errors = ("<h3>Most confident mistakes</h3>" + html_table(mistakes, ["confidence", "true", "predicted", "text"], ("text",))
                  + "<h3>Most confused class pairs</h3>" + html_table(pairs, ["true", "predicted", "count", "share_of_true"])
                  + "<h3>Accuracy by text length (words)</h3>" + html_table(lengths, ["words", "n", "accuracy"]))
        md += ["## Error analysis", "", "Most confused pairs:", "", markdown_table(pairs, ["true", "predicted", "count", "share_of_true"]),
               "", "Most confident mistakes:", "", markdown_table(mistakes[:10], ["confidence", "true", "predicted", "text"]),
               "", markdown_table(lengths, ["words", "n", "accuracy"]), ""]
    html_parts.append(html_section("Error analysis", errors))

    nav = "".join(f'<a href="#{s.lower().replace(" ", "-")}">{s}</a>' for s in SECTIONS)
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>distilora report: '
            f'{html.escape(title)}</title><style>{CSS}</style></head><body><header><h1>distilora report: '
            f'{html.escape(title)}</h1><p>{html.escape(info.method)} on {html.escape(info.backbone)} · '
            f'{html.escape(task)} · split {html.escape(split)}</p><nav>{nav}</nav></header><main>{"".join(html_parts)}'
            f'</main></body></html>')
    atomic_write_text(folder.report_html, page)
    atomic_write_text(folder.report_md, "\n".join(md) + "\n")
    return folder.report_html, folder.report_md


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
