"""``plan fleet scenarios/meta-2025.yaml`` (issue 15, item 5).

Physical accelerators beside H100-equivalents; a horizon through Hyperion's 2 GW phase
and its 5 GW scale-up; the uses of cash the sources name (Scale AI, buybacks,
dividends) and what is still unexplained; a source and date on every new figure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from superlab.plan import render
from superlab.plan.commands import plan_fleet
from superlab.plan.scenario import ScenarioError, load_scenario, qindex
from superlab.plan.sources import source_for, sources

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "scenarios" / "meta-2025.yaml"


@pytest.fixture(scope="module")
def outputs() -> dict[str, dict[str, float]]:
    return plan_fleet(META, draws=3_000, seed=0)["outputs"]


def test_physical_chips_beside_h100_equivalents(outputs: dict) -> None:
    chips, h100e = outputs["2025Q4.fleet_chips"], outputs["2025Q4.fleet_h100e"]
    assert outputs["2025Q4.fleet_units"] == h100e  # the scenario's unit is H100e
    # end-2024: 600k H100e in 0.6-1.14M chips; 2025 adds 1.3-1.9M H100e at 1.0-1.5 per chip
    assert 1.9e6 < h100e["p50"] < 2.5e6
    assert chips["p10"] > 1.3e6  # Zuckerberg 2025-01-24: "more than 1.3 million GPUs"
    assert chips["p50"] != pytest.approx(h100e["p50"], rel=1e-3)
    assert outputs["2025.new_chips"]["p50"] < outputs["2025.new_h100e"]["p50"]
    per_chip = outputs["2025Q4.h100e_per_chip"]
    assert per_chip["p10"] < 1.0 < per_chip["p90"]  # older GPUs at start, GB200s added
    titles = dict(render.fleet_tables(outputs))
    keys = titles["fleet at year end: physical accelerators, H100e"]
    assert keys[:2] == ["2025Q4.fleet_chips", "2025Q4.fleet_h100e"]  # side by side


def test_horizon_covers_hyperions_phases(outputs: dict) -> None:
    s = load_scenario(META)
    assert qindex(s.end) >= qindex("2030Q4")
    phases = {c.name: c for c in s.campuses}
    assert phases["Hyperion"].capacity_gw == 2.0
    assert phases["Hyperion"].capacity_gw + phases["Hyperion phase 2"].capacity_gw == 5.0
    # Prometheus's 1 GW in 2026; Hyperion's 2 GW no earlier than its first gas plants
    # (late 2028) and all of it by 2030 (Meta, 2025-07-14); the 5 GW phase after 2030
    assert outputs["2026Q4.campus_online_gw"]["p10"] == 1.0
    assert outputs["2028Q3.campus_online_gw"]["p90"] == 1.0
    assert outputs["2030Q4.campus_online_gw"]["p10"] == 3.0
    assert outputs["2030Q4.campus_online_gw"]["p90"] == 3.0
    assert outputs["2032Q4.campus_online_gw"]["p90"] == 6.0
    # phase 2 has no announced financing: Meta's own capex while it is built
    assert outputs["2028.capex_own_campuses_b"]["p50"] > 0


def test_named_uses_of_cash_and_what_is_left(outputs: dict) -> None:
    q2 = {k.removeprefix("2025Q2."): v["p50"] for k, v in outputs.items() if k[:7] == "2025Q2."}
    assert q2["investments_b"] == pytest.approx(14.3)  # 49% of Scale AI
    assert q2["buybacks_b"] == pytest.approx(9.76) and q2["dividends_b"] == pytest.approx(1.33)
    assert q2["ocf_b"] == pytest.approx(25.56)  # reported, not EBITDA - tax
    # 43.89 + (24.03 + 25.56) - (13.69 + 17.01) - (13.40 + 1.33 + 9.76 + 1.33) - 14.3
    assert q2["cash_modelled_b"] == pytest.approx(22.66)
    assert q2["cash_unexplained_b"] == pytest.approx(11.98 - 22.66)  # was -29.5
    assert q2["cash_b"] == pytest.approx(11.98)
    why = source_for(sources(META), "company.cash_actual_b.2025Q2")
    assert "unexplained" in why and "non-marketable" in why and "securities" in why
    assert outputs["2025Q4.cash_b"]["p50"] == pytest.approx(35.873)  # 10-K 2025
    assert outputs["2025.ocf_b"]["p50"] == pytest.approx(115.79)  # Meta: $115.8B
    keys = dict(render.fleet_tables(outputs))["cash reconciliation ($B)"]
    assert "2025Q2.cash_unexplained_b" in keys and "2025Q2.investments_b" in keys


NEW_FIGURES = (
    "fleet_start_chips",
    "company.cash_actual_b.2025Q4",
    "company.ocf_actual_b.2025Q3",
    "company.capex_b.2026",
    "company.capex_b.2030",
    "company.ebitda_b.2030",
    "company.capex_actual_b.2025Q4",
    "company.buybacks_actual_b.2025Q3",
    "company.buybacks_b.2026",
    "company.dividends_actual_b.2025Q1",
    "company.dividends_b.2027",
    "company.investments.0.amount_b",
    "accelerators.0.h100e_per_chip",
    "campuses.1.build_months",
    "campuses.2.capacity_gw",
    "campuses.2.start",
    "campuses.2.power",
)


@pytest.mark.parametrize("path", NEW_FIGURES)
def test_every_new_figure_has_a_source_and_date(path: str) -> None:
    text = source_for(sources(META), path)
    assert text, path
    assert re.search(r"\b20\d\d-\d\d\b", text) or "ASSUMPTION" in text, (path, text)


def _edit(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(META.read_text())
    edit(raw)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_missing_year_and_bad_actuals_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"company\.capex_b: no figure for 2031"):
        load_scenario(_edit(tmp_path, lambda r: r["company"]["capex_b"].pop(2031)))
    with pytest.raises(ScenarioError, match=r"company\.buybacks_b\.2025: .* below"):
        load_scenario(_edit(tmp_path, lambda r: r["company"]["buybacks_b"].update({2025: 10})))
    with pytest.raises(ScenarioError, match=r"fleet_start_h100e: units is h100e"):
        load_scenario(_edit(tmp_path, lambda r: r.update(fleet_start_h100e=600000)))


def test_chips_bought_as_chips_count_their_h100_equivalents(tmp_path: Path) -> None:
    """100k GB200 GPUs bought as chips are 100k physical and 252,780 H100e (2,500 / 989)."""

    def edit(r: dict) -> None:
        r["accelerators"] = [
            {
                "name": "gb200",
                "quarter": "2025Q3",
                "units": 100000,
                "unit": "chips",
                "accelerator": "gb200",
                "price_usd": 60000,
            }
        ]

    o = plan_fleet(_edit(tmp_path, edit), draws=200, seed=0)["outputs"]
    assert o["2025.new_chips"]["p50"] == pytest.approx(100_000)
    assert o["2025.new_h100e"]["p50"] == pytest.approx(100_000 * 2500 / 989)
    assert o["2025Q3.fleet_h100e"]["p50"] == pytest.approx(600_000 + 100_000 * 2500 / 989)
