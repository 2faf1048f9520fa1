"""The ``report`` stage: write ``report.html``, the picture of a run, from what exists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from superlab.common import RunDir, StageContext, atomic_write_text
from superlab.config import Recipe
from superlab.report.html import Section, page
from superlab.report.post import post_training_section
from superlab.report.sections import (
    data_section,
    eval_section,
    plan_section,
    recipe_section,
    samples_section,
    training_section,
)
from superlab.report.sources import sources_sections


def build_sections(recipe: Recipe, run: RunDir) -> list[Section]:
    """Every section, in pipeline order."""
    return [
        recipe_section(recipe),
        data_section(run),
        *sources_sections(run),  # a mixture's per-source audit, shares and held-out figures
        training_section(run),
        *([post_training_section(run)] if recipe.sft or recipe.pref or recipe.rl else []),
        eval_section(run),
        samples_section(run),
        plan_section(run),
    ]


def render_report(recipe: Recipe, run: RunDir, sections: list[Section] | None = None) -> str:
    """The report as one self-contained HTML string."""
    sections = build_sections(recipe, run) if sections is None else sections
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return page(f"superlab run: {recipe.name}", f"{run.root} · generated {stamp}", sections)


def write_report(recipe: Recipe, run: RunDir) -> Path:
    """Render and atomically write ``report.html``; returns its path."""
    atomic_write_text(run.report, render_report(recipe, run))
    return run.report


def run(ctx: StageContext) -> dict[str, Any]:
    """Write ``report.html``; the summary names the sections that have no data yet."""
    sections = build_sections(ctx.recipe, ctx.run)
    atomic_write_text(ctx.run.report, render_report(ctx.recipe, ctx.run, sections))
    absent = [s.id for s in sections if not s.present]
    ctx.log.info(
        "report: wrote %s%s",
        ctx.run.report,
        f" (not run yet: {', '.join(absent)})" if absent else "",
    )
    summary: dict[str, Any] = {
        "path": str(ctx.run.report),
        "sections": sum(s.present for s in sections),
    }
    if absent:
        summary["not_run_yet"] = ", ".join(absent)
    return summary
