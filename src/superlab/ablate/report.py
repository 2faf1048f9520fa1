"""The ablation's ``report.html``: the comparison table and three plots, self-contained.

Plots (inline SVG, no network): training loss by step (mean over seeds), expert load
CV by step for the MoE configurations, and recall accuracy by distance between the
fact and the query. A curve averages the seeds that logged each point. With two or more
axes each plot is drawn once per value of the first axis (e.g. one panel per attention
kind, a line per router), all panels of a plot on the same scales, so that twenty
configurations do not crowd one chart.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from superlab.ablate.table import FIGURES
from superlab.common import atomic_write_text
from superlab.report.html import Section, esc, fmt, page, table
from superlab.report.svg import line_chart

LABELS = {
    "final_loss": "final loss",
    "heldout_loss": "held-out loss",
    "recall_accuracy": "recall",
    "recall_same": "recall same-chunk",
    "recall_cross": "recall cross-chunk",
    "recall_straddle": "recall straddle",
    "context_fault": "context fault",
    "multihop_accuracy": "multi-hop",
    "load_cv": "load CV",
    "dropped_fraction": "dropped",
}


def _cell(stat: dict[str, Any]) -> str:
    if stat["mean"] is None:
        return "–"
    if stat["ci95"] is None:
        return fmt(stat["mean"])
    return f"{fmt(stat['mean'])} ± {fmt(stat['ci95'])}"


def _mean_curve(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    at: dict[float, list[float]] = defaultdict(list)
    for r in rows:
        for x, y in r["curves"].get(key, []):
            if y is not None:
                at[x].append(y)
    return [(x, sum(ys) / len(ys)) for x, ys in sorted(at.items())]


def _panels(by_config: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """Panel title -> {series name -> configuration}: one panel per first-axis value."""
    panels: dict[str, dict[str, str]] = defaultdict(dict)
    for config, rs in by_config.items():
        values = rs[0]["values"]
        axes = list(values)
        if len(axes) < 2:
            panels[""][config] = config
            continue
        rest = "/".join(values[a] for a in axes[1:])
        panels[f"{axes[0]} = {values[axes[0]]}"][rest] = config
    return panels


def _range(curves: list[list[tuple[float, float]]], axis: int) -> tuple[float, float] | None:
    values = [p[axis] for c in curves for p in c]
    return (min(values), max(values)) if values else None


def _plot(
    by_config: dict[str, list[dict[str, Any]]],
    key: str,
    title: str,
    x_label: str,
    y_label: str,
) -> str:
    """The curve ``key`` of every configuration: one chart per panel, shared scales."""
    panels = _panels(by_config)
    curves = {c: _mean_curve(rs, key) for c, rs in by_config.items()}
    drawn = [curves[c] for members in panels.values() for c in members.values() if curves[c]]
    x_range, y_range = _range(drawn, 0), _range(drawn, 1)
    single = len(panels) == 1
    charts = []
    for name, members in panels.items():
        series = {label: curves[c] for label, c in members.items() if curves[c]}
        if not series and not single:
            continue
        charts.append(
            line_chart(
                series,
                title=title if single else f"{title}: {name}",
                x_label=x_label,
                y_label=y_label,
                width=760 if single else 440,
                height=300 if single else 240,
                x_range=x_range,
                y_range=y_range,
            )
        )
    return '<div style="display:flex;flex-wrap:wrap;gap:12px">' + "".join(charts) + "</div>"


def render(grid: str, rows: list[dict[str, Any]], configs: list[dict[str, Any]]) -> str:
    """The report as one HTML string."""
    by_config: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["complete"]:
            by_config[r["config"]].append(r)
    chunk = next((r["chunk_size"] for r in rows if r["chunk_size"]), None)
    chance = next((r["recall_chance"] for r in rows if r.get("recall_chance")), None)
    head = ["configuration", "seeds", *(LABELS[f] for f in FIGURES)]
    body = [
        [c["config"], f"{c['seeds']}/{c['runs']}", *(_cell(c[f]) for f in FIGURES)] for c in configs
    ]
    note = (
        f"<p>Mean ± 95% interval over seeds (Student's t). Chunk relation at chunk size "
        f"{esc(fmt(chunk))}; recall chance level {esc(fmt(chance))}. Context fault = "
        "same-chunk minus cross-chunk recall accuracy.</p>"
    )
    budget = table(
        ["run", "complete", "matmul FLOPs/token", "attention FLOPs/token"],
        [
            [r["name"], r["complete"], r["matmul_flops_per_token"], r["attention_flops_per_token"]]
            for r in rows
        ],
    )
    loss = _plot(by_config, "loss", "training loss", "step", "loss")
    load = _plot(by_config, "load_cv", "expert load CV", "step", "load CV (std / mean)")
    recall = _plot(
        by_config,
        "recall_by_distance",
        "recall",
        "fact-to-query distance, bin start (tokens)",
        "accuracy",
    )
    sections = [
        Section("table", "Comparison", note + table(head, body)),
        Section("loss", "Loss curves", loss),
        Section("balance", "Load balance", load),
        Section("recall", "Recall by distance", recall),
        Section("budget", "Budget per run", budget),
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return page(f"superlab ablation: {grid}", f"{len(rows)} runs · generated {stamp}", sections)


def write_report(
    grid: str, rows: list[dict[str, Any]], configs: list[dict[str, Any]], path: Path
) -> None:
    """Write ``report.html`` atomically."""
    atomic_write_text(path, render(grid, rows, configs))
