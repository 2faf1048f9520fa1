"""A mixture grid: the base recipe, and the recipe of each proxy or confirmation run.

Every run is the base recipe with ``data.sources[*].weight`` set and the grid's ``proxy``
or ``confirm`` overrides applied (dotted fields, as in ablation grids; never ``data`` or
``tokenizer``), so all runs share one data stage. Runs of one kind must train on the
same number of tokens, or the grid is refused naming the two runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superlab.ablate.grid import (
    GridError,
    RunSpec,
    _set,
    _validate,
    load_base,
    read_grid,
    tokens_per_run,
)
from superlab.config import Recipe
from superlab.config.mix import MixGridConfig


@dataclass(frozen=True)
class MixGrid:
    """A loaded grid: its settings, the base recipe (raw and resolved) and its file."""

    config: MixGridConfig
    base_raw: dict[str, Any]
    base: Recipe
    path: Path

    @property
    def sources(self) -> list[str]:
        return [s.name for s in self.base.data.sources]


def load_mix_grid(path: str | Path) -> MixGrid:
    """Read and check a mixture grid file and its base recipe."""
    path = Path(path)
    cfg = read_grid(path, MixGridConfig)
    base_raw, base = load_base(cfg.base, path)
    names = [s.name for s in base.data.sources]
    if len(names) < 2:
        raise GridError(f"{path}: base: a mixture search needs data.sources with 2 or more")
    for name in cfg.target.sources or []:
        if name not in names:
            raise GridError(f"{path}: target.sources: '{name}' is not a source ({names})")
    return MixGrid(cfg, base_raw, base, path)


def run_recipe_for(
    grid: MixGrid, name: str, weights: dict[str, float], seed: int, kind: str
) -> RunSpec:
    """The run ``name``: the base with these weights, the ``kind`` overrides and this seed."""
    raw = copy.deepcopy(grid.base_raw)
    where = f"{grid.path}: {name}"
    for src in raw["data"]["sources"]:
        src["weight"] = float(weights.get(src["name"], 0.0))
    overrides = grid.config.proxy if kind == "proxy" else grid.config.confirm
    for dotted, value in overrides.items():
        _set(raw, dotted, value, where)
    raw["name"] = name
    raw["seed"] = seed
    _set(raw, "train.seed", seed, where)
    return RunSpec(kind, {"mixture": name}, seed, _validate(raw, where))


def data_recipe(grid: MixGrid) -> Recipe:
    """The recipe of the grid's shared data stage, ``<grid>-data``."""
    raw = copy.deepcopy(grid.base_raw)
    raw["name"] = f"{grid.config.name}-data"
    return Recipe.model_validate(raw)


def check_budget(runs: list[RunSpec], path: Path) -> None:
    """Refuse runs of one kind that train on different numbers of tokens."""
    first: dict[str, RunSpec] = {}
    for r in runs:
        f = first.setdefault(r.config, r)
        if tokens_per_run(r.recipe) != tokens_per_run(f.recipe):
            raise GridError(
                f"{path}: {r.name} trains on {tokens_per_run(r.recipe)} tokens, {f.name} on "
                f"{tokens_per_run(f.recipe)}: every {r.config} run needs the same token budget"
            )
