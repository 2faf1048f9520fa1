"""HTML reports of a run: one self-contained ``report.html``, inline CSS and SVG charts.

The shape: each section is a function ``(run: RunDir) -> Section`` that reads
its own file and says "not run yet" when it is absent; ``write_report(recipe,
run)`` renders them all; ``superlab.report.stage.run(ctx)`` is the ``report`` stage.
``plan_page`` and ``plan_charts`` draw ``superlab plan``'s numbers (``--html``, ``--svg``).
"""

from superlab.report.html import Section
from superlab.report.stage import build_sections, render_report, write_report
from superlab.report.svg import line_chart, nice_ticks

__all__ = [
    "Section",
    "build_sections",
    "line_chart",
    "nice_ticks",
    "render_report",
    "write_report",
]
