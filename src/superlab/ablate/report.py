"""The ablation's ``report.html``: the comparison table and three plots, self-contained.

Plots (inline SVG, no network): training loss by step (mean over seeds), expert load
CV by step for the MoE configurations, and recall accuracy by distance between the
fact and the query. A curve averages the seeds that logged each point.
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
    loss = line_chart(
        {c: _mean_curve(rs, "loss") for c, rs in by_config.items()},
        title="training loss",
        x_label="step",
        y_label="loss",
        width=760,
    )
    load = line_chart(
        {
            c: _mean_curve(rs, "load_cv")
            for c, rs in by_config.items()
            if any(r["curves"]["load_cv"] for r in rs)
        },
        title="expert load CV (std / mean tokens per expert)",
        x_label="step",
        y_label="load CV",
        width=760,
    )
    recall = line_chart(
        {c: _mean_curve(rs, "recall_by_distance") for c, rs in by_config.items()},
        title="recall accuracy by token distance from fact to query (bin start)",
        x_label="distance (tokens)",
        y_label="accuracy",
        width=760,
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
