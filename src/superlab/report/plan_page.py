"""The ``superlab plan train|serve|fleet --html`` page: the terminal's tables plus charts.

One self-contained document (inline CSS and SVG, no JavaScript) built from the
dict that ``superlab.plan.commands`` returns; every string from the scenario or
the command line is escaped. Numbers are formatted as in the terminal tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from superlab.common import atomic_write_text
from superlab.plan import render
from superlab.plan.sources import source_for
from superlab.report.html import Section, esc, page
from superlab.report.plan_charts import band_chart, tornado_svg

# Fleet charts by quarter: (title, y label, {series name: output suffix}).
FLEET_CHARTS = (
    ("Cash", "$B", {"cash": "cash_b"}),
    (
        "Capex by category",
        "$B per quarter",
        {
            "total": "capex_b",
            "accelerators": "capex_accelerators_b",
            "own campuses": "capex_own_campuses_b",
            "other": "capex_other_b",
        },
    ),
    ("Free cash flow", "$B per quarter", {"free cash flow": "fcf_b"}),
    ("Cumulative accelerators", "units", {"fleet": "fleet_units"}),
    (
        "Power",
        "GW",
        {
            "IT, accelerators added": "added_it_gw",
            "facility (IT x PUE)": "added_facility_gw",
            "campus capacity online": "campus_online_gw",
        },
    ),
    ("Runway: months of capex in cash", "months", {"runway": "months_of_capex_in_cash"}),
)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], nums: range = range(1, 4)) -> str:
    """A table of already-formatted strings; the ``nums`` columns align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(v)}</td>' if i in nums else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def quantiles(title: str, outputs: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The terminal's p10/p50/p90 table under an ``<h3>`` title."""
    rows = [
        [k, *(render.num(outputs[k][q]) for q in ("p10", "p50", "p90"))]
        for k in keys
        if k in outputs
    ]
    return f"<h3>{esc(title)}</h3>" + _table(("output", "p10", "p50", "p90"), rows)


def tornadoes(tornado: Mapping[str, list[dict[str, Any]]]) -> str:
    """One tornado chart per target output, widest swing on top."""
    charts = "".join(
        f"<div>{tornado_svg(f'{target}: tornado', rows)}</div>" for target, rows in tornado.items()
    )
    note = (
        "<p class='note'>Each bar: the output with one input at its p10 and p90, rest at p50.</p>"
    )
    return note + f'<div class="charts">{charts}</div>'


def inputs_table(inputs: Mapping[str, Any], sources: Mapping[str, str] | None) -> str:
    """Every input: its distribution, p10/p50/p90 and (scenarios) the source comment."""
    rows = []
    for name, v in inputs.items():
        if isinstance(v, dict):
            dist = f"{v['dist']} {render.num(v['low'])} to {render.num(v['high'])}"
            dist += f", mode {render.num(v['mode'])}" if v.get("mode") is not None else ""
            qs = [render.num(v[q]) for q in ("p10", "p50", "p90")]
        else:
            dist, qs = "fixed", [render.num(v)] * 3
        rows.append([name, dist, *qs, *([source_for(sources, name)] if sources else [])])
    headers = ["input", "distribution", "p10", "p50", "p90", *(["source"] if sources else [])]
    return _table(headers, rows, nums=range(2, 5))


def memory_html(mem: Mapping[str, Any]) -> str:
    """The training memory check: GB per GPU by kind, usable HBM, fits."""
    layout = " ".join(f"{k}={v}" for k, v in mem["layout"].items())
    kinds = ("weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "total_gb")
    rows = [[k.removesuffix("_gb"), render.num(mem[k])] for k in kinds]
    rows += [["usable HBM", render.num(mem["usable_gb"])], ["fits", render.num(mem["fits"])]]
    return (
        f"<h3>memory per GPU ({esc(layout)})</h3>"
        + _table(("kind", "GB"), rows, nums=range(1, 2))
        + f'<p class="note">{esc(mem["formula"])}</p>'
    )


def _band(q: Mapping[str, float]) -> tuple[float, float, float]:
    return q["p10"], q["p50"], q["p90"]


def fleet_charts(outputs: Mapping[str, Any], units: str = "units") -> str:
    """The band charts by quarter: cash, capex, FCF, accelerators, power, runway."""
    _, quarters = render.periods(dict(outputs))
    charts = []
    for title, y_label, names in FLEET_CHARTS:
        series = {
            name: [_band(outputs[f"{q}.{key}"]) for q in quarters]
            for name, key in names.items()
            if all(f"{q}.{key}" in outputs for q in quarters)
        }
        label = units if y_label == "units" else y_label
        charts.append(band_chart(series, quarters, title=title, y_label=label))
    return '<div class="charts">' + "".join(f"<div>{c}</div>" for c in charts) + "</div>"


def _checks(checks: list[dict[str, Any]]) -> str:
    rows = [
        [
            c["check"],
            *(render.num(c[q]) for q in ("p10", "p50", "p90")),
            f"{render.num(c['low'])}-{render.num(c['high'])}",
            "PASS" if c["pass"] else "FAIL",
            c["source"],
        ]
        for c in checks
    ]
    headers = ("check", "p10", "p50", "p90", "sources' range", "result", "source")
    return _table(headers, rows)


def plan_page(
    command: str, result: Mapping[str, Any], sources: Mapping[str, str] | None = None
) -> str:
    """The whole HTML document for ``superlab plan <command>``'s result."""
    o = result["outputs"]
    run = f"{result.get('draws', 0):,} draws, seed {result.get('seed', 0)}"
    sections: list[Section] = []
    if command == "fleet":
        title = f"superlab plan fleet: {result['scenario']}"
        meta = f"scenario {result['scenario']}, as of {result.get('as_of', '?')}; {run}"
        if result.get("checks"):
            sections.append(
                Section("checks", "Reproduced public figures", _checks(result["checks"]))
            )
        sections.append(
            Section("charts", "By quarter", fleet_charts(o, result.get("units", "units")))
        )
        tables = "".join(quantiles(t, o, keys) for t, keys in render.fleet_tables(dict(o)))
    else:
        acc, prec = result["accelerator"], result["precision"]
        if command == "train":
            head = f"training on {result['num_gpus']} x {acc} ({prec})"
            tables = quantiles(head, o, render.TRAIN_KEYS)
        else:
            tables = quantiles(f"serving on {acc}", o, render.SERVE_KEYS)
        title, meta = f"superlab plan {command}: {acc} ({prec})", run
    sections.append(Section("outputs", "Outputs (p10 / p50 / p90)", tables))
    if result.get("memory"):
        sections.append(Section("memory", "Memory check", memory_html(result["memory"])))
    sections.append(Section("tornado", "What moves the outputs", tornadoes(result["tornado"])))
    sections.append(Section("inputs", "Inputs", inputs_table(result["inputs"], sources)))
    return page(title, meta, sections)


def write_plan_page(
    path: str | Path,
    command: str,
    result: Mapping[str, Any],
    sources: Mapping[str, str] | None = None,
) -> None:
    """Write the page to ``path`` atomically."""
    atomic_write_text(path, plan_page(command, result, sources))
