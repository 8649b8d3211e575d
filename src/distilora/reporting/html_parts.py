"""The pieces every distilora page is made of (run report, audit report): one stylesheet, tables in HTML and
Markdown with the same number formatting, sections, embedded figures. Self-contained, so pages open offline."""
from __future__ import annotations

import base64
import html
from typing import Any

CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#1f2937}
header{background:#111827;color:#f9fafb;padding:20px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#9ca3af}main{max-width:1080px;margin:0 auto;padding:16px 24px 48px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:16px 22px;margin:16px 0}
h2{font-size:17px;margin:4px 0 12px;color:#111827}table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto;display:block;margin:8px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#eef2ff;border-radius:8px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px;color:#1e3a8a}.card span{font-size:12px;color:#4b5563}
.card small{display:block;font-size:11px;color:#6b7280}
td.text{text-align:left;max-width:560px;white-space:pre-wrap;word-break:break-word}.note{color:#6b7280;font-size:13px}
nav a{color:#93c5fd;margin-right:12px;font-size:13px;text-decoration:none}
.warning{background:#fef3c7;border-left:4px solid #d97706;padding:8px 12px;font-size:13px;margin:6px 0}
pre{background:#f9fafb;padding:8px 12px;overflow-x:auto;font-size:12px}
"""


def image_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def cell_text(value: Any) -> str:
    """Whole numbers as integers (with thousands separators), numbers under 10 to 4 decimals, larger ones to 1,
    None as blank."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):  # scores to 4 places; sizes and seconds, which are larger, to 1
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return "" if value is None else str(value)


def html_table(rows: list[dict[str, Any]], columns: list[str], text_columns: tuple[str, ...] = ()) -> str:
    if not rows:
        return '<p class="note">Nothing to show.</p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            shown = cell_text(value)
            cls = ' class="text"' if c in text_columns else ""
            cells.append(f"<td{cls}>{html.escape(shown)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(v: Any) -> str:
        return cell_text(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def html_section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'
