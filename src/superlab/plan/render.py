"""Rich tables and a tornado SVG for the dicts that ``plan.commands`` returns."""

from __future__ import annotations

from html import escape
from typing import Any

from rich.table import Table

PALETTE = ("#0072B2", "#D55E00")  # Okabe & Ito (2008), as report/svg.py


def num(v: Any) -> str:
    """A compact number: 3 significant digits, thousands separators for big ones."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, str):
        return v
    x = float(v)
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-2):
        return f"{x:.3g}"
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def quantile_table(title: str, outputs: dict[str, dict[str, float]], keys: list[str]) -> Table:
    """One row per output: p10, p50, p90."""
    t = Table(title=title)
    for col in ("output", "p10", "p50", "p90"):
        t.add_column(col, justify="left" if col == "output" else "right")
    for k in keys:
        if k in outputs:
            q = outputs[k]
            t.add_row(k, num(q["p10"]), num(q["p50"]), num(q["p90"]))
    return t


def tornado_table(title: str, rows: list[dict[str, Any]], top: int = 8) -> Table:
    """The inputs that move an output most, widest swing first."""
    t = Table(title=title)
    for col in ("input", "input p10..p90", "output at p10", "output at p90", "swing"):
        t.add_column(col, justify="left" if col == "input" else "right")
    for r in rows[:top]:
        t.add_row(
            r["input"],
            f"{num(r['input_p10'])}..{num(r['input_p90'])}",
            num(r["output_at_p10"]),
            num(r["output_at_p90"]),
            num(r["swing"]),
        )
    return t


def memory_table(mem: dict[str, Any]) -> Table:
    """Per-GPU training memory by kind, and whether it fits."""
    layout = " ".join(f"{k}={v}" for k, v in mem["layout"].items())
    t = Table(title=f"memory per GPU ({layout})")
    t.add_column("kind")
    t.add_column("GB", justify="right")
    for k in ("weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "total_gb"):
        t.add_row(k.removesuffix("_gb"), num(mem[k]))
    t.add_row("usable HBM", num(mem["usable_gb"]))
    t.add_row("fits", num(mem["fits"]))
    t.caption = mem["formula"]
    return t


def validation_table(rows: list[dict[str, Any]]) -> Table:
    """Published vs ours for every validation run."""
    t = Table(title="published training runs, reproduced from published inputs")
    for col in (
        "run",
        "metric",
        "published",
        "ours p10",
        "p50",
        "p90",
        "error",
        "implied TFLOP/s",
        "result",
    ):
        t.add_column(col, justify="left" if col in ("run", "metric") else "right")
    for r in rows:
        status = ("PASS" if r["pass"] else "FAIL") + (" (known gap)" if r["kind"] == "gap" else "")
        t.add_row(
            r["name"],
            r["metric"],
            num(r["published"]),
            num(r["p10"]),
            num(r["p50"]),
            num(r["p90"]),
            f"{r['rel_error']:+.1%}",
            num(r.get("implied_tflops_per_gpu")),
            status,
        )
    return t


def checks_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """Scenario outputs against the range the sources give."""
    t = Table(title=title)
    for col in ("check", "p10", "p50", "p90", "sources' range", "result", "source"):
        t.add_column(col, justify="right" if col in ("p10", "p50", "p90") else "left")
    for r in rows:
        t.add_row(
            r["check"],
            num(r["p10"]),
            num(r["p50"]),
            num(r["p90"]),
            f"{num(r['low'])}-{num(r['high'])}",
            "PASS" if r["pass"] else "FAIL",
            r["source"],
        )
    return t


def tornado_svg(title: str, rows: list[dict[str, Any]], top: int = 10, width: int = 640) -> str:
    """A horizontal tornado chart: one bar per input from output-at-p10 to output-at-p90."""
    rows = rows[:top]
    bar_h, left, pad = 22, 230, 20
    height = 50 + bar_h * max(len(rows), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">'
        f"{escape(title)}</text>",
    ]
    if not rows:
        out.append('<text x="20" y="40">no uncertain inputs</text></svg>')
        return "".join(out)
    lo = min(min(r["output_at_p10"], r["output_at_p90"]) for r in rows)
    hi = max(max(r["output_at_p10"], r["output_at_p90"]) for r in rows)
    span = (hi - lo) or 1.0

    def px(v: float) -> float:
        return left + (v - lo) / span * (width - left - pad)

    base = px(rows[0]["base"])
    for i, r in enumerate(rows):
        y = 32 + i * bar_h
        for end, color in ((r["output_at_p10"], PALETTE[0]), (r["output_at_p90"], PALETTE[1])):
            x0, x1 = sorted((base, px(end)))
            out.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" '
                f'height="{bar_h - 6}" fill="{color}"/>'
            )
        out.append(
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(r["input"])}</text>'
        )
    out.append(f'<line x1="{base:.1f}" y1="28" x2="{base:.1f}" y2="{height - 14}" stroke="#333"/>')
    out.append(
        f'<text x="{left}" y="{height - 2}">input at p10 (blue) / p90 (orange); '
        f"line = all inputs at p50 ({rows[0]['base']:.4g})</text></svg>"
    )
    return "".join(out)
