"""A self-contained HTML page: inline CSS, figures as base64 PNG, tables as HTML, no scripts."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d232b;
background:#f6f7f9;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.7em;margin:0.2em 0}h2{border-bottom:2px solid #dde3ea;padding-bottom:4px;
margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;font-size:0.86em;margin:10px 0 18px;display:block;
overflow-x:auto;max-width:100%}
th,td{border:1px solid #dde3ea;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
figure{margin:12px 0 20px}figure img{max-width:100%;height:auto;border:1px solid #eef2f6}
figcaption{font-size:0.85em;color:#55606e}.note{color:#55606e;font-size:0.9em}
.stats{display:flex;flex-wrap:wrap;gap:10px}.stat{background:#eef2f6;border-radius:6px;
padding:8px 14px}.stat b{display:block;font-size:1.3em}nav a{margin-right:12px}
dt{font-weight:600;margin-top:6px}dd{margin-left:18px}
"""


@dataclass
class Section:
    """One report section: a heading and HTML blocks."""

    title: str
    blocks: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower())


def _format(value: object, digits: int) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "–"
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def table(frame: pd.DataFrame, digits: int = 3, max_rows: int = 400) -> str:
    """An escaped HTML table; floats rounded to ``digits`` (p-values below that in e-notation)."""
    if frame is None or frame.empty:
        return paragraph("No rows.")
    note = ""
    if len(frame) > max_rows:
        note = paragraph(f"First {max_rows} of {len(frame)} rows; the full table is in the CSV.")
        frame = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format(v, digits))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def image(png_base64: str, caption: str) -> str:
    """An inline PNG figure with a caption."""
    alt = html.escape(caption, quote=True)
    return (f'<figure><img src="data:image/png;base64,{png_base64}" alt="{alt}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def paragraph(text: str, css: str = "note") -> str:
    """An escaped paragraph."""
    return f'<p class="{css}">{html.escape(text)}</p>'


def stats_row(items: dict[str, object]) -> str:
    """A row of headline numbers."""
    cells = "".join(
        f'<div class="stat"><b>{html.escape(str(v))}</b>{html.escape(k)}</div>'
        for k, v in items.items()
    )
    return f'<div class="stats">{cells}</div>'


def definitions(items: dict[str, str]) -> str:
    """A definition list."""
    body = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items.items()
    )
    return f"<dl>{body}</dl>"


def render(title: str, subtitle: str, sections: list[Section]) -> str:
    """The full page."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.blocks)}</section>'
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{html.escape(title)}</h1>{paragraph(subtitle)}<nav>{nav}</nav>{body}"
        "</main></body></html>\n"
    )
