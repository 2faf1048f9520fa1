"""Inline-SVG charts for ``superlab plan``: tornado bars, and p10-p90 bands by quarter.

Standalone ``<svg>`` elements that parse as XML (no plotting dependency), for
``--svg`` and ``--html`` (``plan_page.py``). They live in ``report``, beside the run's
line charts whose palette and ticks they share; ``plan`` computes the numbers only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from superlab.plan.render import num
from superlab.report.svg import PALETTE, nice_ticks

Band = tuple[float, float, float]  # p10, p50, p90
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 30, 56


def tick(v: float) -> str:
    """A short axis label: 1.5M, 250k, 2.5, 0."""
    if abs(v) < 1e-12:
        return "0"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.4g}{suffix}"
    return f"{v:.4g}"


def _text(x: float, y: float, s: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'


def band_chart(
    series: Mapping[str, Sequence[Band]],
    labels: Sequence[str],
    *,
    title: str,
    y_label: str = "",
    width: int = 560,
    height: int = 300,
) -> str:
    """An ``<svg>``: x = ``labels`` (quarters), per series a shaded p10-p90 band and p50 line."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    out = [
        *_svg_open(width, height, title),
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="#fff" stroke="#999"/>',
    ]
    values = [v for bands in series.values() for b in bands for v in b if math.isfinite(v)]
    if not values or not labels:
        out.append(_text(LEFT + plot_w / 2, TOP + plot_h / 2, "no data", extra=' fill="#777"'))
        return "".join(out) + "</svg>"
    ticks = nice_ticks(min(values), max(values))
    y0, y1 = ticks[0], ticks[-1]
    step = plot_w / max(len(labels), 1)

    def px(i: int) -> float:
        return LEFT + step * (i + 0.5)

    def py(v: float) -> float:
        return TOP + plot_h - (v - y0) / (y1 - y0) * plot_h

    for t in ticks:
        out.append(
            f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + plot_w}" y2="{py(t):.1f}" '
            f'stroke="{"#999" if t == 0 else "#eee"}"/>'
        )
        out.append(_text(LEFT - 5, py(t) + 4, tick(t), anchor="end"))
    every = math.ceil(len(labels) / max(plot_w // 60, 1))  # ~60 px per label, never overlapping
    for i, lab in enumerate(labels):
        if i % every == 0:
            out.append(_text(px(i), TOP + plot_h + 15, lab))
    cy = TOP + plot_h / 2
    out.append(_text(14, cy, y_label, extra=f' transform="rotate(-90 14 {cy:.1f})"'))
    out.append(
        _text(width - RIGHT, height - 6, "shaded: p10-p90, line: p50", "end", ' fill="#666"')
    )
    lx = float(LEFT)  # legend: one row under the axis, outside the plot so it hides no data
    for k, (name, bands) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = [(px(i), b) for i, b in enumerate(bands) if all(math.isfinite(v) for v in b)]
        upper = " ".join(f"{x:.1f},{py(b[2]):.1f}" for x, b in pts)
        lower = " ".join(f"{x:.1f},{py(b[0]):.1f}" for x, b in reversed(pts))
        out.append(f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="0.18"/>')
        mid = " ".join(f"{x:.1f},{py(b[1]):.1f}" for x, b in pts)
        out.append(f'<polyline points="{mid}" fill="none" stroke="{color}" stroke-width="2"/>')
        out.extend(
            f'<circle cx="{x:.1f}" cy="{py(b[1]):.1f}" r="2.5" fill="{color}"/>' for x, b in pts
        )
        ly = TOP + plot_h + 32
        out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        out.append(_text(lx + 14, ly, name, anchor="start"))
        lx += 30 + 6.5 * len(name)  # ~6.5 px per 11 px character
    return "".join(out) + "</svg>"


def tornado_svg(title: str, rows: list[dict[str, Any]], top: int = 10, width: int = 560) -> str:
    """Horizontal bars, widest swing on top: the output with one input at its p10 and p90."""
    moving = [r for r in rows if r["swing"] > 0]
    still = len(rows) - len(moving)
    rows = moving[:top]
    bar_h, left = 22, 200
    height = 62 + bar_h * max(len(rows), 1)
    out = [
        *_svg_open(width, height, title),
    ]
    if not rows:
        out.append(_text(20, 44, "no input moves this output", "start"))
        return "".join(out) + "</svg>"
    ends = [v for r in rows for v in (r["output_at_p10"], r["output_at_p90"], r["base"])]
    pad = 8 + 6.5 * max(len(num(v)) for v in ends)  # room for the value labels at bar ends
    lo, hi = min(ends), max(ends)
    span = (hi - lo) or 1.0

    def px(v: float) -> float:
        return left + pad + (v - lo) / span * (width - left - 2 * pad)

    base = px(rows[0]["base"])
    for i, r in enumerate(rows):
        y = 32 + i * bar_h
        for end, color in ((r["output_at_p10"], PALETTE[0]), (r["output_at_p90"], PALETTE[1])):
            x0, x1 = sorted((base, px(end)))
            out.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" '
                f'height="{bar_h - 6}" fill="{color}"/>'
            )
        for end in (r["output_at_p10"], r["output_at_p90"]):
            if px(end) != base:  # the output's value at this end, just outside the bar
                side = 1 if px(end) > base else -1
                anchor = "start" if side > 0 else "end"
                out.append(_text(px(end) + 3 * side, y + 12, num(end), anchor, ' fill="#444"'))
        out.append(_text(left - 6, y + 12, r["input"], "end"))
    out.append(f'<line x1="{base:.1f}" y1="28" x2="{base:.1f}" y2="{height - 28}" stroke="#333"/>')
    note = f"input at p10 (blue) / p90 (orange); line: all inputs at p50 ({num(rows[0]['base'])})"
    out.append(_text(width / 2, height - 16, note, extra=' fill="#666"'))
    hidden = [f"{still} input{'s' * (still != 1)} that do not move it"] * bool(still)
    hidden += [f"{len(moving) - len(rows)} smaller swings"] * (len(moving) > len(rows))
    if hidden:  # nothing is dropped silently
        out.append(
            _text(width / 2, height - 3, "not shown: " + "; ".join(hidden), extra=' fill="#666"')
        )
    return "".join(out) + "</svg>"


def _svg_open(width: int, height: int, title: str) -> list[str]:
    """The opening tag, accessible title and heading every chart starts with."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        _text(width / 2, 18, title, extra=' font-weight="bold" font-size="13"'),
    ]
