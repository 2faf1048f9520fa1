"""Every file in recipes/ loads: recipes as recipes, ablation grids and mixture grids as grids."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from superlab.ablate.grid import expand
from superlab.config.recipe import load_recipe
from superlab.mix.grid import data_recipe, load_mix_grid

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_loads(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "proxies" in raw or raw.get("mode") in ("regmix", "leave_one_out"):
        grid = load_mix_grid(path)
        assert data_recipe(grid).data.sources, "a mixture grid's base needs data.sources"
    elif "base" in raw:
        _, runs = expand(path)
        assert runs
    else:
        assert load_recipe(path).name == raw["name"]


def test_every_kind_of_file_is_shipped() -> None:
    names = {p.name for p in RECIPES}
    assert {"tiny.yaml", "mix-search.yaml", "ablate-attention.yaml"} <= names
