"""A small inline-SVG line chart: several series, ticked axes, labels and a legend.

No plotting dependency; the output is a standalone ``<svg>`` element that also
parses as XML. Points whose x or y is missing, NaN or infinite are left out of
the line (and counted in the chart's caption), so a chart never breaks on them.

The legend sits right of the plot, never over a line; each series has its own colour and
dash pattern (7 colours x 3 patterns before a pair repeats). ``x_range`` / ``y_range``
fix the axes so that charts side by side share a scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

Point = tuple[float | None, float | None]

# Okabe & Ito (2008) colour-blind-safe palette, black first dropped for contrast.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 30, 46
MAX_MARKERS = 40  # draw a dot per point only for sparse series (held-out loss, a single point)
DASHES = ("", "6 3", "2 2")  # solid, dashed, dotted: after the palette's 7 colours
LEGEND_GAP, CHAR_W = 12, 6.5  # px between plot and legend; ~px per 11px character


def style(i: int) -> tuple[str, str]:
    """Colour and dash pattern of series ``i`` (distinct for 21 series)."""
    return PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]


def fmt_number(v: float) -> str:
    """A short tick label: 4 significant digits, no trailing zeros, 0 for tiny rounding noise."""
    if v == 0 or abs(v) < 1e-12:
        return "0"
    return f"{v:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` evenly spaced round ticks (steps 1, 2, 2.5, 5 x 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise ValueError(f"nice_ticks needs finite lo <= hi, got {lo!r}, {hi!r}")
    if hi == lo:
        pad = abs(lo) * 0.5 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    start, stop = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [i * step for i in range(start, stop + 1)]


def _clean(points: Sequence[Point]) -> tuple[list[tuple[float, float]], int]:
    """Finite points sorted by x, and how many were dropped."""
    kept = [(float(x), float(y)) for x, y in points if _finite(x) and _finite(y)]
    return sorted(kept), len(points) - len(kept)


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _text(
    x: float, y: float, s: str, anchor: str = "middle", extra: str = "", size: int = 11
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>'
        f"{escape(s)}</text>"
    )


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = 560,
    height: int = 300,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
) -> str:
    """An ``<svg>`` line chart of ``{name: [(x, y), ...]}``; empty data gives a "no data" frame.

    ``width`` is the plot's frame; a legend adds its own width on the right.
    """
    cleaned = {name: _clean(points) for name, points in series.items()}
    dropped = sum(d for _, d in cleaned.values())
    data = {name: pts for name, (pts, _) in cleaned.items() if pts}
    left, top = MARGIN_LEFT, MARGIN_TOP
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM
    # The legend: a 24 px line sample, a gap, then the name; nothing when there is no data.
    legend_w = LEGEND_GAP + 34 + CHAR_W * max(map(len, data)) if data else 0
    total_w = width + legend_w
    legend_h = top + 15 * len(data) + 10
    total_h = max(height, legend_h)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h}" '
        f'viewBox="0 0 {total_w:.0f} {total_h}" role="img" aria-label="{escape(title)}" '
        f'font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title>",
        _text(left + plot_w / 2, 18, title, extra=' font-weight="bold"', size=13),
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" '
        f'fill="#fff" stroke="#999"/>',
    ]
    if not data:
        out.append(_text(left + plot_w / 2, top + plot_h / 2, "no data", extra=' fill="#777"'))
        out.append(_dropped_note(dropped, left, top + plot_h))
        out.append("</svg>")
        return "".join(out)

    xs = [x for pts in data.values() for x, _ in pts]
    ys = [y for pts in data.values() for _, y in pts]
    x_lo, x_hi = x_range if x_range is not None else (min(xs), max(xs))
    y_lo, y_hi = y_range if y_range is not None else (min(ys), max(ys))
    x_ticks, y_ticks = nice_ticks(x_lo, x_hi), nice_ticks(y_lo, y_hi)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    for t in x_ticks:
        out.append(
            f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + plot_h}" '
            'stroke="#eee"/>'
        )
        out.append(_text(px(t), top + plot_h + 15, fmt_number(t)))
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + plot_w}" y2="{py(t):.1f}" '
            'stroke="#eee"/>'
        )
        out.append(_text(left - 5, py(t) + 4, fmt_number(t), anchor="end"))
    out.append(_text(left + plot_w / 2, height - 8, x_label))
    cy = top + plot_h / 2
    out.append(_text(14, cy, y_label, extra=f' transform="rotate(-90 14 {cy:.1f})"'))

    lx = width + LEGEND_GAP  # the legend, right of the plot frame
    legend = []
    for i, (name, pts) in enumerate(data.items()):
        color, dash = style(i)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        if len(pts) > 1:
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{color}" '
                f'stroke-width="1.5"{dashed}/>'
            )
        if len(pts) <= MAX_MARKERS:
            out.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>'
                for x, y in pts
            )
        ly = top + 8 + 15 * i
        legend.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{color}" '
            f'stroke-width="2"{dashed}/>'
        )
        legend.append(_text(lx + 30, ly, name, anchor="start"))
    out.extend(legend)
    out.append(_dropped_note(dropped, left, top + plot_h))
    out.append("</svg>")
    return "".join(out)


def _dropped_note(dropped: int, x: float, y: float) -> str:
    """Say how many points were left out (nothing is dropped silently)."""
    if not dropped:
        return ""
    note = f"{dropped} non-finite points left out"
    return _text(x + 4, y - 6, note, anchor="start", extra=' fill="#a00"')
