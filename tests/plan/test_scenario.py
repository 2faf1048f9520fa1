"""Inconsistent scenarios fail with file, line and the dotted field; meta-2025 loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from superlab.plan.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "scenarios" / "meta-2025.yaml"


def _write(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(META.read_text())
    edit(raw)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_meta_2025_loads() -> None:
    s = load_scenario(META)
    assert s.name == "meta-2025" and len(s.campuses) == 3
    assert s.company.marketable_securities_b == 33.93  # separate from cash


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (
            lambda r: r["campuses"][0].update(capacity_gw=1.5),
            "campuses.0.capacity_gw",
            "draws 1.5 GW but its power supply is 1 GW",
        ),
        (
            lambda r: r["accelerators"][0].update(price_usd=-25000),
            "accelerators.0.price_usd",
            "must be >= 0",
        ),
        (lambda r: r.update(end="2024Q4"), "end", "before start"),
        (
            lambda r: r["financing"][0].update(quarter="2034Q1"),
            "financing.0.quarter",
            "outside 2025Q1..2032Q4",
        ),
        (
            lambda r: r["campuses"][1].update(online_target="2025Q2"),
            "campuses.1.online_target",
            "before start",
        ),
        (
            lambda r: r["accelerators"][0].update(campus="Nowhere"),
            "accelerators.0.campus",
            "no campus named 'Nowhere'",
        ),
        (
            lambda r: r["accelerators"][0].update(campus="Prometheus"),
            "accelerators.0.units",
            "draw",
        ),  # 1.6M H100s need ~2.5 GW, Prometheus has 1 GW
        (
            lambda r: r["company"].update(capex_b={2025: [72, 66]}),
            "company.capex_b.2025",
            "low (72) must be <= high (66)",
        ),
    ],
)
def test_inconsistent_scenarios_name_the_field(
    tmp_path: Path, edit, field: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, edit))
    text = str(err.value)
    assert f": {field}: " in text, text
    assert message in text, text
    assert str(tmp_path / "s.yaml") + ":" in text  # file and line


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_scenario(bad)
