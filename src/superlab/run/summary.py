"""The final summary table of a run."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from superlab.run.runner import RunResult


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in list(value.items())[:4]) + "}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    return str(value)


def summary_table(result: RunResult) -> Table:
    """One row per selected stage: status, time, and the stage's own summary figures."""
    table = Table(title=f"run {result.run.root.name} ({result.run.root})", title_justify="left")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("result", overflow="fold")
    for o in result.outcomes:
        style = {"ran": "green", "done before": "dim"}.get(o.status, "red")
        figures = ", ".join(f"{k}={_fmt(v)}" for k, v in o.summary.items())
        table.add_row(o.name, f"[{style}]{o.status}[/]", f"{o.seconds:.1f}s", figures)
    return table
