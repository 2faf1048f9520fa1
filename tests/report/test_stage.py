"""report.html from a fake run dir: sections, numbers, escaping, well-formedness, gaps."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.plan import estimate_training
from superlab.report import render_report
from superlab.report.html import fmt
from superlab.report.sections import plan_section
from superlab.report.stage import run

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        pass  # <line/>, <rect/>: opened and closed

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def assert_well_formed(html: str) -> None:
    """Every non-void tag is closed in order, and every inline <svg> parses as XML."""
    checker = _Balance()
    checker.feed(html)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, f"unclosed: {checker.stack}"
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        ET.fromstring(svg)


def _ctx(run_dir: RunDir) -> StageContext:
    return StageContext(recipe=Recipe(name="demo", model={"moe": {}}), run=run_dir)


def test_full_run_report(full_run: RunDir) -> None:
    summary = run(_ctx(full_run))
    html = full_run.report.read_text("utf-8")
    assert_well_formed(html)
    assert summary == {"path": str(full_run.report), "sections": 6}
    assert "not run yet" not in html
    # recipe, collapsible
    assert "<details><summary>resolved recipe" in html and "num_experts: 4" in html
    # data: steps, removal reasons, tokens
    for text in ("dedup", "940", "812", "128", "86.4%", "dedup:exact", "188"):
        assert text in html, text
    assert "Funnel" in html and "<td>2.5</td>" in html.replace(' class="num"', "")
    assert "c4:javascript" in html and "123,456" in html
    # training: summary numbers, the half-written line counted, four charts
    assert "unreadable lines skipped" in html
    assert '<td>last step</td><td class="num">100</td>' in html
    assert '<td>best held-out loss</td><td class="num">4.167</td>' in html  # 7.5 - 100/30
    assert html.count("<svg") == 4
    for title in ("Loss", "Learning rate", "Gradient norm", "Expert load"):
        assert f"<title>{title}" in html
    assert "layer1" in html and "layer3" in html and "10, 20, 30, 40" in html
    # eval, samples (escaped), plan
    assert "heldout.perplexity" in html and "53.91" in html and "3.988" in html
    assert "&lt;b&gt;Rome&lt;/b&gt; &amp; its &quot;empire&quot;" in html
    assert "<b>Rome" not in html
    assert "58,982" in html and "117,964" in html and "1,024" in html
    assert "NVIDIA H100 Tensor Core GPU datasheet (2023)" in html


def test_empty_run_says_not_run_yet(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path / "fresh")
    summary = run(_ctx(run_dir))
    html = run_dir.report.read_text("utf-8")
    assert_well_formed(html)
    assert summary["sections"] == 1  # the recipe is always there
    assert summary["not_run_yet"] == "data, training, eval, samples, plan"
    assert html.count('<p class="missing">not run yet') == 5
    for name in ("stats.json", "metrics.jsonl", "eval.json", "samples.json", "plan.json"):
        assert f"not run yet ({name} not found)" in html


def test_partial_and_odd_files_are_tolerated(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.data.mkdir()
    run_dir.data_stats.write_text('{"steps": [{"name": "Reader"}], "surprise": 1}')
    run_dir.metrics.write_text('{"step": 0, "loss": NaN, "lr": 0.001}\n{"step": 1}\n')
    run_dir.eval.write_text("{not json")
    run_dir.samples.write_text('{"samples": ["bare string"]}')
    html = render_report(Recipe(name="odd"), run_dir)
    assert_well_formed(html)
    assert "Reader" in html
    assert "could not read eval.json" in html
    assert "bare string" in html
    assert "1 non-finite points left out" in html  # the NaN loss


def test_fmt_numbers() -> None:
    assert [fmt(v) for v in (None, True, 1234567, 2e12, 58982.14, 123.456, 3.98765)] == [
        "–",
        "true",
        "1,234,567",
        "2,000,000,000,000",
        "58,982",
        "123.5",
        "3.988",
    ]
    assert [fmt(v) for v in (8.4e22, 5.59e-06, float("nan"))] == ["8.400e+22", "5.590e-06", "nan"]


def test_plan_section_reads_what_the_plan_stage_writes(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    est = estimate_training(7e9, 2e12, 0.0, "h100-sxm", "bf16", 1024, 0.4, 1.0, 1.2, 2.0)
    plan = {"this_run": est.model_dump(mode="json"), "at_scale": est.model_dump(mode="json")}
    plan["at_scale"]["tokens_source"] = "plan.target_tokens"
    run_dir.plan.parent.mkdir(parents=True, exist_ok=True)
    run_dir.plan.write_text(json.dumps(plan))
    section = plan_section(run_dir)
    assert section.present
    at_scale_cells = re.findall(
        r"<tr><td>[^<]*</td><td[^>]*>[^<]*</td><td[^>]*>([^<]*)</td>", section.body
    )
    assert "–" not in at_scale_cells  # every row of the estimate is filled
    for text in ("58,982", "8.400e+22", "1.487", "102.8", "117,964", "2.4"):
        assert text in section.body, text
