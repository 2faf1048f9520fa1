"""The SVG line chart: valid XML for empty, single-point, NaN and multi-series data."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from superlab.report.svg import fmt_number, line_chart, nice_ticks

NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_empty_data_says_no_data() -> None:
    for series in ({}, {"loss": []}):
        root = _parse(line_chart(series, title="Loss"))
        assert "no data" in _texts(root)
        assert not list(root.iter(f"{NS}polyline"))


def test_single_point_is_a_marker_with_padded_axes() -> None:
    root = _parse(line_chart({"loss": [(10, 3.2)]}, title="Loss"))
    assert not list(root.iter(f"{NS}polyline"))
    assert len(list(root.iter(f"{NS}circle"))) == 1
    assert "loss" in _texts(root)


def test_nan_and_none_points_are_left_out_and_counted() -> None:
    points = [(0, 1.0), (1, math.nan), (2, math.inf), (3, None), (4, 0.5)]
    root = _parse(line_chart({"loss": points}))
    (line,) = root.iter(f"{NS}polyline")
    assert len(line.get("points", "").split()) == 2
    assert "3 non-finite points left out" in _texts(root)
    root = _parse(line_chart({"loss": [(0, math.nan)]}))
    assert "no data" in _texts(root)


def test_multiple_series_axes_and_escaping() -> None:
    series = {"train <loss>": [(s, 5 - s / 100) for s in range(0, 201, 10)], "held & out": []}
    series["held & out"] = [(0, 5.1), (100, 4.2), (200, 3.3)]
    svg = line_chart(series, title="a < b", x_label="step", y_label="loss")
    root = _parse(svg)
    assert len(list(root.iter(f"{NS}polyline"))) == 2
    texts = _texts(root)
    assert {"train <loss>", "held & out", "a < b", "step", "loss"} <= set(texts)
    assert {"0", "50", "100", "150", "200"} <= set(texts)  # x ticks
    assert "&lt;loss&gt;" in svg


def test_nice_ticks() -> None:
    assert nice_ticks(0, 200) == [0, 50, 100, 150, 200]
    assert nice_ticks(3.3, 5.1) == pytest.approx([3.0, 3.5, 4.0, 4.5, 5.0, 5.5])
    ticks = nice_ticks(0.0, 0.003)
    assert ticks[0] == 0 and ticks[-1] == pytest.approx(0.003)
    assert nice_ticks(7, 7) == [2, 4, 6, 8, 10, 12]  # one value: padded by half
    with pytest.raises(ValueError):
        nice_ticks(math.nan, 1)


def test_fmt_number() -> None:
    assert fmt_number(0.1 + 0.2) == "0.3"
    assert fmt_number(1e-17) == "0"
    assert fmt_number(12345.0) == "1.234e+04"


def test_the_legend_sits_right_of_the_plot_and_21_series_look_different() -> None:
    series = {f"config {i}": [(0, i), (10, i + 1)] for i in range(21)}
    root = _parse(line_chart(series, width=400, height=200))
    frame = next(r for r in root.iter(f"{NS}rect") if r.get("stroke") == "#999")
    right = float(frame.get("x", 0)) + float(frame.get("width", 0))
    names = [t for t in root.iter(f"{NS}text") if (t.text or "").startswith("config ")]
    assert len(names) == 21 and all(float(t.get("x", 0)) > right for t in names)
    assert float(root.get("height", 0)) >= max(float(t.get("y", 0)) for t in names)
    looks = {(p.get("stroke"), p.get("stroke-dasharray")) for p in root.iter(f"{NS}polyline")}
    assert len(looks) == 21


def test_fixed_ranges_give_charts_side_by_side_the_same_axes() -> None:
    def ticks(points):
        svg = line_chart({"a": points}, x_range=(0, 100), y_range=(0.0, 1.0))
        return [t.text for t in _parse(svg).iter(f"{NS}text")]

    assert ticks([(0, 0.2), (50, 0.3)]) == ticks([(10, 0.9), (100, 0.95)])
    assert "100" in ticks([(0, 0.2), (50, 0.3)])  # the x axis reaches the shared end
