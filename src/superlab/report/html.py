"""HTML building blocks and the page shell: escaped text, tables, sections, inline CSS.

Every string that came from a file or the recipe passes through ``esc``; the
page needs no external assets and no JavaScript (``<details>`` collapses).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOT_RUN = "not run yet"

CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta, .note { color: #666; font-size: .9rem; }
.missing { color: #a60; font-style: italic; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; }
pre { background: #f7f7f7; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.sample { border-left: 3px solid #0072B2; padding-left: .8rem; margin-bottom: 1rem; }
.prompt { font-weight: bold; }
nav a { margin-right: 1rem; }
"""


def esc(value: Any) -> str:
    """``str(value)`` with HTML special characters escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A number for humans (thousands separators, 4 significant digits); other values as str."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        size = abs(value)
        if value == int(value) and size < 1e15:
            return f"{int(value):,}"
        if size >= 1e15 or size < 1e-3:
            return f"{value:.3e}"
        if size >= 100:  # 4 significant digits, but never scientific below 1e15
            return f"{value:,.{max(0, 3 - math.floor(math.log10(size)))}f}"
        return f"{value:.4g}"
    return str(value)


def cell(value: Any) -> str:
    """One ``<td>``: numbers right-aligned and formatted, everything escaped."""
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="num">{esc(fmt(value))}</td>' if is_num else f"<td>{esc(fmt(value))}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table with a header row; cells are escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_table(items: Mapping[str, Any], headers: Sequence[str] = ("", "value")) -> str:
    """A two-column key/value table."""
    return table(headers, items.items())


def missing(what: str) -> str:
    """The "not run yet" paragraph, naming the file that is absent."""
    return f'<p class="missing">{NOT_RUN} ({esc(what)} not found)</p>'


@dataclass(frozen=True)
class Section:
    """One part of the report: an anchor id, a heading, its body HTML, whether data existed."""

    id: str
    title: str
    body: str
    present: bool = True


def page(title: str, meta: str, sections: Sequence[Section]) -> str:
    """The complete, self-contained HTML document."""
    nav = "".join(
        f'<a href="#{esc(s.id)}">{esc(s.title)}{"" if s.present else " (" + NOT_RUN + ")"}</a>'
        for s in sections
    )
    body = "".join(
        f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><p class="meta">{esc(meta)}</p><nav>{nav}</nav>{body}'
        "</body></html>\n"
    )
