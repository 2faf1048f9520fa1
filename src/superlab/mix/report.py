"""The mixture search's ``report.html``: self-contained tables and inline-SVG charts.

RegMix: the regression's cross-validated Spearman correlation and a scatter of predicted
against actual target for the held-out proxies; each confirmation run's predicted and
actual target; the gains over the natural and uniform mixtures with their intervals;
every mixture's weights as a bar chart. Leave-one-out: the target with each source left out.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from superlab.common import atomic_write_text
from superlab.report.html import Section, esc, fmt, page, table
from superlab.report.svg import PALETTE, nice_ticks

W, H, PAD = 420, 320, 56


def _interval(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    ci = stat.get("ci95")
    return fmt(stat["mean"]) if ci is None else f"{fmt(stat['mean'])} ± {fmt(ci)}"


def scatter(points: list[tuple[float, float]], title: str, x_label: str, y_label: str) -> str:
    """An ``<svg>`` scatter of (x, y) with the y = x line."""
    if not points:
        return f"<p>{esc(title)}: no points</p>"
    vals = [v for p in points for v in p]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def sx(v: float) -> float:
        return PAD + (v - lo) / (hi - lo) * (W - PAD - 16)

    def sy(v: float) -> float:
        return H - PAD + 10 - (v - lo) / (hi - lo) * (H - PAD - 30)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<line x1="{sx(lo)}" y1="{sy(lo)}" x2="{sx(hi)}" y2="{sy(hi)}" stroke="#999" '
        'stroke-dasharray="4 3"/>',
    ]
    for t in ticks:
        out.append(
            f'<text x="{sx(t)}" y="{H - PAD + 26}" font-size="10" text-anchor="middle">'
            f"{fmt(t)}</text>"
            f'<text x="{PAD - 6}" y="{sy(t) + 3}" font-size="10" text-anchor="end">{fmt(t)}</text>'
        )
    out.append(
        f'<line x1="{PAD}" y1="{H - PAD + 10}" x2="{W - 16}" y2="{H - PAD + 10}" stroke="#444"/>'
        f'<line x1="{PAD}" y1="30" x2="{PAD}" y2="{H - PAD + 10}" stroke="#444"/>'
        f'<text x="{W / 2}" y="{H - 8}" font-size="11" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="14" y="{H / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {H / 2})">{escape(y_label)}</text>'
    )
    for x, y in points:
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{PALETTE[0]}"/>')
    out.append("</svg>")
    return "".join(out)


def weight_bars(mixtures: dict[str, dict[str, float]]) -> str:
    """An ``<svg>`` of stacked horizontal bars: one bar per mixture, a colour per source."""
    names = list(next(iter(mixtures.values()))) if mixtures else []
    row_h, left, width = 26, 110, 520
    height = 30 + row_h * len(mixtures) + 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}" '
        f'viewBox="0 0 {left + width + 20} {height}" role="img" aria-label="weights">',
    ]
    for i, name in enumerate(names):
        out.append(
            f'<rect x="{left + 110 * i}" y="6" width="10" height="10" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/><text x="{left + 110 * i + 14}" y="15" '
            f'font-size="11">{escape(name)}</text>'
        )
    for r, (role, w) in enumerate(mixtures.items()):
        y, x = 30 + r * row_h, float(left)
        out.append(f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">'
                   f"{escape(role)}</text>")  # fmt: skip
        total = sum(w.values()) or 1.0
        for i, name in enumerate(names):
            dx = width * w[name] / total
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{dx:.1f}" height="{row_h - 6}" '
                f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(name)} '
                f"{w[name]:.3f}</title></rect>"
            )
            x += dx
    out.append("</svg>")
    return "".join(out)


def _weights_table(mixtures: dict[str, dict[str, float]], sources: list[str]) -> str:
    return table(
        ["mixture", *sources], [[r, *(w[s] for s in sources)] for r, w in mixtures.items()]
    )


def write_report(result: dict[str, Any], path: Path) -> None:
    """Write ``report.html`` for a ``mix`` result."""
    sources, target = result["sources"], result["target"]
    what = f"mean held-out {target['metric']} over {', '.join(target['sources'] or sources)}"
    sections = []
    if result["mode"] == "regmix":
        reg = result["regression"]
        scatter_pts = [(p["cv_predicted"], p["actual"]) for p in result["proxies"]]
        sections.append(Section("regression", "Regression", (
            f"<p>{esc(reg['kind'])} regression on {len(result['proxies'])} proxies; "
            f"Spearman rank correlation of predicted and actual target on held-out proxies "
            f"({reg['cv_folds']}-fold cross-validation): <b>{fmt(reg['spearman_cv'])}</b>. "
            f"Searched {reg['searched']:,} simulated mixtures; the predicted mixture is the "
            f"mean of the best {reg['top_k']}. Target: {esc(what)} (lower is better).</p>"
            + scatter(scatter_pts, "held-out proxies", "predicted (cross-validated)", "actual")
        )))  # fmt: skip
        rows = [
            [c["role"], c["seed"], c["predicted"], c["actual"]] for c in result["confirmations"]
        ]
        gains = "".join(
            f"<li>{esc(k)} − predicted: {_interval(v)}</li>" for k, v in result["gain_vs"].items()
        )
        left = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in result["left_out"].items())
        sections.append(Section("confirm", "Confirmation runs", (
            table(["mixture", "seed", "predicted", "actual"], rows)
            + table(["mixture", "actual (mean ± 95% CI over seeds)"],
                    [[r, _interval(s)] for r, s in result["by_role"].items()])
            + "<p>Gain of the predicted mixture (paired by seed; &gt; 0 is better):</p>"
            + f"<ul>{gains}</ul>"
            + (f"<p>Left out:</p><ul>{left}</ul>" if left else "")
        )))  # fmt: skip
        proxy_rows = [[p["run"], *(p["weights"][s] for s in sources), p["actual"],
                       p["cv_predicted"]] for p in result["proxies"]]  # fmt: skip
        sections.append(Section("proxies", "Proxy runs", table(
            ["run", *sources, "actual", "predicted (CV)"], proxy_rows)))  # fmt: skip
    else:
        rows = [[c["role"], c["seed"], c["actual"], *(c["by_source"].get(s) for s in sources)]
                for c in result["confirmations"]]  # fmt: skip
        sections.append(Section("loo", "Leave one source out", (
            f"<p>Target: {esc(what)} (lower is better).</p>"
            + table(["mixture", "seed", "target", *sources], rows)
            + table(["mixture", "target (mean ± 95% CI over seeds)"],
                    [[r, _interval(s)] for r, s in result["by_role"].items()])
        )))  # fmt: skip
    sections.append(Section("weights", "Weights", (
        weight_bars(result["mixtures"]) + _weights_table(result["mixtures"], sources)
        + table(["source", "train tokens"], list(result["train_tokens"].items()))
    )))  # fmt: skip
    html = page(f"superlab mix: {result['grid']}", f"mode {result['mode']}", sections)
    atomic_write_text(path, html)
