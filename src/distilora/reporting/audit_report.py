"""The audit page: what was audited and how, then the suspects as tables a person can judge row by row."""
from __future__ import annotations

import html
from typing import Any

from distilora.reporting.html_parts import CSS, html_section, html_table, markdown_table
from distilora.runfolder import AuditFolder, atomic_write_text

SHOWN = 20
COLUMNS = ["row", "text", "given_label", "suggested_label", "label_quality", "issue", "conflicts_with_rows"]


def _short(rows: list[dict[str, Any]], limit: int = 300) -> list[dict[str, Any]]:
    return [{**r, "text": r["text"] if len(r["text"]) <= limit else r["text"][:limit] + "…"} for r in rows]


def write_audit_report(folder: AuditFolder, summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """report.html and report.md: the settings, the counts, the worst label suspects and the conflicting duplicates."""
    settings = [{"field": key, "value": summary.get(key)} for key in
                ("train", "rows", "task", "backbone", "method", "folds", "seed", "label_issues", "conflicting_duplicates",
                 "out_of_fold_accuracy", "created")]
    labels = _short([r for r in rows if r["issue"] != "duplicate"][:SHOWN])
    duplicates = _short([r for r in rows if r["issue"] != "label"][:SHOWN])
    model = ("a run fine-tuned (with the config's settings)" if summary["method"] == "finetune" else
             f"a logistic-regression head on {summary['backbone']} sentence embeddings fitted")
    how = (f"Each row's probabilities come from {model} on the other {summary['folds'] - 1} of "
           f"{summary['folds']} folds; cleanlab flags rows "
           f"whose given label that held-out head contradicts. Label quality is the held-out probability of the "
           f"given label (lower = more suspect). All flagged rows are in issues.csv.")
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>Label audit</title><style>{CSS}</style></head>",
            f"<body><header><h1>Label audit</h1><p>{html.escape(str(summary['train']))}</p></header><main>",
            html_section("Overview", f'<p class="note">{html.escape(how)}</p>' + html_table(settings, ["field", "value"])),
            html_section(f"Most likely label errors (top {len(labels)})", html_table(labels, COLUMNS, ("text",))),
            html_section("Near-duplicates with different labels", html_table(duplicates, COLUMNS, ("text",))),
            "</main></body></html>"]
    atomic_write_text(folder.report_html, "".join(page))
    markdown = ["# Label audit", "", how, "", markdown_table(settings, ["field", "value"]), "",
                f"## Most likely label errors (top {len(labels)})", "", markdown_table(labels, COLUMNS), "",
                "## Near-duplicates with different labels", "", markdown_table(duplicates, COLUMNS), ""]
    atomic_write_text(folder.report_md, "\n".join(markdown))
