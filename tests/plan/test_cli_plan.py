"""``superlab plan``: JSON and tables from the thin CLI; scenario errors exit 2 naming the field."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from superlab.cli_plan import plan_app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_train_json_with_ranges(tmp_path: Path) -> None:
    svg = tmp_path / "t.svg"
    args = [
        "train",
        "--params",
        "405e9",
        "--tokens",
        "15.6e12",
        "--gpus",
        "16384",
        "--mfu",
        "0.38:0.43",
        "--draws",
        "2000",
        "--json",
        "--svg",
        str(svg),
        "--layers",
        "126",
        "--d-model",
        "16384",
        "--heads",
        "128",
        "--tp",
        "8",
        "--pp",
        "16",
    ]
    res = runner.invoke(plan_app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    q = data["outputs"]["gpu_hours"]
    assert q["p10"] <= q["p50"] <= q["p90"]
    assert data["tornado"]["gpu_hours"][0]["input"] == "mfu"
    assert data["memory"]["layout"]["dp"] == 128
    assert svg.read_text().startswith("<svg")


def test_train_from_recipe_and_serve() -> None:
    res = runner.invoke(
        plan_app,
        [
            "train",
            str(ROOT / "recipes" / "tiny.yaml"),
            "--tokens",
            "1e9",
            "--gpus",
            "8",
            "--draws",
            "1000",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "gpu_hours" in res.output
    res = runner.invoke(
        plan_app, ["serve", "--daily-users", "1e7:3e7", "--draws", "1000", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["outputs"]["gpus"]["p50"] >= 8


def test_fleet_and_validate() -> None:
    res = runner.invoke(
        plan_app, ["fleet", str(ROOT / "scenarios" / "meta-2025.yaml"), "--draws", "2000", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert all(c["pass"] for c in json.loads(res.output)["checks"])
    res = runner.invoke(plan_app, ["validate", "--draws", "2000"])
    assert res.exit_code == 0, res.output


def test_fleet_error_names_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "scenarios" / "meta-2025.yaml")
        .read_text()
        .replace("capacity_gw: 1.0", "capacity_gw: 3.0")
    )
    res = runner.invoke(plan_app, ["fleet", str(bad)])
    assert res.exit_code == 2
    assert "campuses.0.capacity_gw" in res.output
