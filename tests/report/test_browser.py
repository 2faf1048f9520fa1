"""The run report in headless Chromium: no console errors, no requests, charts painted."""

from __future__ import annotations

from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.report.stage import run


def test_run_report_renders_in_chromium(full_run: RunDir, open_in_browser) -> None:
    run(StageContext(recipe=Recipe(name="demo", model={"moe": {}}), run=full_run))
    seen = open_in_browser(full_run.report)
    assert seen["errors"] == []
    assert seen["requests"] == []  # self-contained: nothing fetched
    assert len(seen["charts"]) >= 3
    for chart in seen["charts"]:
        _, _, width, height = chart["box"]
        assert width >= 200 and height >= 100, chart  # laid out at a readable size
        assert chart["painted"] > 0.01, chart  # axes, lines and labels drawn
    assert "held-out" in seen["text"].lower()
    assert seen["screenshot"].stat().st_size > 10_000


def test_the_browser_check_sees_errors_requests_and_blank_charts(tmp_path, open_in_browser):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body><p>x</p>"
        '<img src="https://example.invalid/a.png">'
        '<svg width="300" height="150"></svg>'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    seen = open_in_browser(page)
    assert any("boom" in e for e in seen["errors"])
    assert any("undefinedFunction" in e for e in seen["errors"])
    assert seen["requests"] == ["https://example.invalid/a.png"]
    assert seen["charts"][0]["painted"] == 0.0
