"""``superlab plan ... --html``: a well-formed page with the table numbers, charts, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from superlab.cli_plan import plan_app
from superlab.plan import commands, render
from superlab.plan.sources import source_for, sources
from superlab.report.plan_charts import band_chart, tornado_svg
from superlab.report.plan_page import plan_page, write_plan_page

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "meta-2025.yaml"
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "wbr"}
runner = CliRunner()


class Balanced(HTMLParser):
    """Checks that every opened tag is closed in order (void elements excepted)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def check_well_formed(html: str) -> list[ET.Element]:
    """Balanced tags; every inline SVG parses as XML. Returns the parsed SVGs."""
    parser = Balanced()
    parser.feed(html)
    parser.close()
    assert parser.stack == []
    svgs, start = [], 0
    while (i := html.find("<svg", start)) >= 0:
        end = html.index("</svg>", i) + len("</svg>")
        svgs.append(ET.fromstring(html[i:end]))
        start = end
    return svgs


def fleet_result(tmp_path: Path, name: str = "meta-2025") -> tuple[dict, Path]:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.read_text().replace("name: meta-2025", f"name: {name!r}"))
    return commands.plan_fleet(path, draws=500, seed=0), path


def test_fleet_page_numbers_charts_sources(tmp_path: Path) -> None:
    result, path = fleet_result(tmp_path)
    html = plan_page("fleet", result, sources(path))
    svgs = check_well_formed(html)
    titles = [s.findtext("{http://www.w3.org/2000/svg}title") for s in svgs]
    for t in ("Cash", "Capex by category", "Free cash flow", "Cumulative accelerators", "Power"):
        assert t in titles
    assert "Runway: months of capex in cash" in titles
    assert sum(t.endswith(": tornado") for t in titles) == len(result["tornado"]) > 0
    # 2026 capex ($115-135B guidance) exactly as the terminal table formats it; seed 0, 500
    # draws.
    q = result["outputs"]["2026.capex_b"]
    assert render.num(q["p50"]) == "125"
    cells = "".join(f'<td class="num">{render.num(q[p])}</td>' for p in ("p10", "p50", "p90"))
    assert f"<td>2026.capex_b</td>{cells}" in html
    assert "Meta Sustainability Report 2024" in html  # pue's source comment
    assert "uniform 115 to 135" in html
    # physical accelerators next to H100-equivalents, and the cash reconciliation
    assert "<td>2025Q4.fleet_chips</td>" in html and "<td>2025Q4.fleet_h100e</td>" in html
    assert "<td>2025Q2.cash_unexplained_b</td>" in html


def test_sources_walk_up_to_the_nearest_comment() -> None:
    found = sources(SCENARIO)
    assert "ASSUMPTION: tents" in source_for(found, "campuses.0.build_months")
    assert "H100-equivalents" in source_for(found, "accelerators.0.units")
    assert source_for(found, "no.such.path") == ""


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    result, path = fleet_result(tmp_path, "<script>alert(1)</script>")
    html = plan_page("fleet", result, sources(path))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    check_well_formed(html)
    rows = [{"input": "<b>&", "input_p10": 1, "input_p90": 2, "output_at_p10": 1.0,
             "output_at_p90": 3.0, "base": 2.0, "swing": 2.0}]  # fmt: skip
    assert ET.fromstring(tornado_svg("a < b", rows)).findtext("{*}title") == "a < b"


def test_charts_without_data_still_parse() -> None:
    ET.fromstring(tornado_svg("t", []))
    ET.fromstring(band_chart({}, [], title="empty"))
    svg = band_chart({"x": [(1.0, 2.0, 3.0), (2.0, 2.5, 4.0)]}, ["2025Q1", "2025Q2"], title="b")
    assert ET.fromstring(svg).find("{*}polygon") is not None


def test_write_is_atomic(tmp_path: Path) -> None:
    result, _ = fleet_result(tmp_path)
    out = tmp_path / "out" / "plan.html"
    write_plan_page(out, "fleet", result)
    write_plan_page(out, "fleet", result)  # over an existing file
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["plan.html"]  # no temp files left


def test_cli_html_for_train_serve_fleet(tmp_path: Path) -> None:
    train = [
        "train", "--params", "405e9", "--tokens", "15.6e12", "--gpus", "16384",
        "--mfu", "0.38:0.43", "--layers", "126", "--d-model", "16384", "--heads", "128",
        "--tp", "8", "--pp", "16", "--draws", "500",
    ]  # fmt: skip
    runs = {
        "train": train,
        "serve": ["serve", "--draws", "500", "--params", "60e9:80e9"],
        "fleet": ["fleet", str(SCENARIO), "--draws", "300"],
    }
    for name, args in runs.items():
        page = tmp_path / f"{name}.html"
        res = runner.invoke(plan_app, [*args, "--json", "--html", str(page)])
        assert res.exit_code == 0, res.output
        html = page.read_text()
        check_well_formed(html)
        assert "What moves the outputs" in html
    train_html = (tmp_path / "train.html").read_text()
    assert "Memory check" in train_html and "gpu_hours: tornado" in train_html
    assert "training on 16384 x h100-sxm (bf16)" in train_html
    assert "gpus: tornado" in (tmp_path / "serve.html").read_text()
    assert "Reproduced public figures" in (tmp_path / "fleet.html").read_text()
