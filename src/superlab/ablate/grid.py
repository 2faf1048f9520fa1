"""An ablation grid: a base recipe and axes, expanded into runs of equal budget.

A grid file (YAML)::

    name: ablate-llama4
    base: {...}            # a recipe (inline), or a path to one, relative to the grid file
    seeds: [0, 1]          # each run is repeated per seed (recipe seed and train.seed)
    axes:                  # axis -> value name -> {dotted.field: value}
      attention:
        full: {model.attention.kind: full}
        chunked: {model.attention.kind: chunked, model.attention.chunk_size: 32}
      router:
        token_choice: {model.moe.router: token_choice}
    dense_baseline: router # the axis the dense baseline stands in for
    jobs: 2                # runs at once, one process each (optional; default 1)

Every combination of axis values is one configuration. The dense baseline replaces the
``dense_baseline`` axis: for each combination of the other axes one more configuration
drops ``model.moe`` and widens the dense MLP to the MoE layer's active width (top_k
experts plus shared ones), so its active parameters per token match the MoE runs.

Checks, each refused with the runs named: every run trains on the same number of
tokens (``train.steps x batch_size x grad_accum x seq_len``); every run's active matmul
FLOPs per token (6 x active parameters, ``superlab.model.counts``) are within 2% of the
first run's (attention FLOPs differ by design: that is what the attention axis varies);
axes never touch ``data`` or ``tokenizer`` (all runs share one data stage).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from superlab.config import Recipe
from superlab.model.counts import flops_per_token

Schema = TypeVar("Schema", bound=BaseModel)
FLOPS_TOLERANCE = 0.02
DENSE = "dense"


class GridError(ValueError):
    """A grid that cannot be expanded; the message names the file and the field."""


class GridConfig(BaseModel):
    """The grid file's schema."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=60)
    base: dict[str, Any] | str
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    axes: dict[str, dict[str, dict[str, Any]]] = Field(min_length=1)
    dense_baseline: str | None = None
    jobs: int = Field(default=1, ge=1)  # runs at once (``superlab ablate --jobs`` overrides)


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: its configuration name, seed and resolved recipe."""

    config: str  # e.g. "chunked/token_choice"
    values: dict[str, str]  # axis -> value name ("dense" for the baseline's axis)
    seed: int
    recipe: Recipe

    @property
    def name(self) -> str:
        return self.recipe.name


def _set(tree: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if nxt is None:  # e.g. model.moe: null, then model.moe.router: ...
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise GridError(f"{where}: '{dotted}': '{part}' is not a section")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def _dense_overrides(base: Recipe, where: str) -> dict[str, Any]:
    moe = base.model.moe
    if moe is None:
        raise GridError(f"{where}: dense_baseline needs a base recipe with model.moe")
    if moe.every != 1 or base.model.layer_pattern:
        raise GridError(
            f"{where}: dense_baseline matches active parameters only when every layer is MoE "
            "(model.moe.every: 1, no layer_pattern in the base)"
        )
    expert = moe.expert_hidden or base.model.hidden
    return {"model.moe": None, "model.ffn_hidden": expert * (moe.top_k + moe.num_shared_experts)}


def read_grid(path: Path, schema: type[Schema]) -> Schema:
    """Read a grid file (ablation or mixture) and check it against its schema."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GridError(f"{path}: cannot read ({e})") from None
    return _checked(schema, raw, str(path))


def load_base(base: dict[str, Any] | str, path: Path) -> tuple[dict[str, Any], Recipe]:
    """A grid's base recipe, raw and resolved: inline, or a file relative to the grid ``path``."""
    if isinstance(base, str):
        base_path = (path.parent / base).resolve()
        try:
            base = yaml.safe_load(base_path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise GridError(f"{path}: base: cannot read {base_path} ({e})") from None
    return base, _validate(base, f"{path}: base")


def load_grid(path: str | Path) -> tuple[GridConfig, Path]:
    """Read and check a grid file's schema."""
    path = Path(path)
    return read_grid(path, GridConfig), path


def expand(path: str | Path) -> tuple[GridConfig, list[RunSpec]]:
    """The grid's runs in order: configurations (axes crossed, then baselines) x seeds."""
    grid, path = load_grid(path)
    base_raw, base = load_base(grid.base, path)
    for axis, values in grid.axes.items():
        for value, sets in values.items():
            for dotted in sets:
                if dotted.split(".")[0] in ("data", "tokenizer", "name", "seed"):
                    raise GridError(
                        f"{path}: axes.{axis}.{value}: '{dotted}' would change the shared data"
                    )
    if grid.dense_baseline is not None and grid.dense_baseline not in grid.axes:
        raise GridError(
            f"{path}: dense_baseline: '{grid.dense_baseline}' is not an axis "
            f"({', '.join(grid.axes)})"
        )
    configs: list[tuple[dict[str, str], dict[str, Any]]] = []
    names = list(grid.axes)
    for combo in itertools.product(*(grid.axes[a].items() for a in names)):
        values = {a: v for a, (v, _) in zip(names, combo, strict=True)}
        sets = {k: x for _, s in combo for k, x in s.items()}
        configs.append((values, sets))
    if grid.dense_baseline is not None:
        dense = _dense_overrides(base, f"{path}: dense_baseline")
        others = [a for a in names if a != grid.dense_baseline]
        for combo in itertools.product(*(grid.axes[a].items() for a in others)):
            values = {a: v for a, (v, _) in zip(others, combo, strict=True)}
            values[grid.dense_baseline] = DENSE
            sets = {k: x for _, s in combo for k, x in s.items()}
            configs.append(({a: values[a] for a in names}, {**sets, **dense}))
    runs = []
    for values, sets in configs:
        for seed in grid.seeds:
            raw = copy.deepcopy(base_raw)
            where = f"{path}: {'/'.join(values.values())}"
            for dotted, value in sets.items():
                _set(raw, dotted, value, where)
            raw["name"] = "-".join([grid.name, *values.values(), f"s{seed}"])
            raw["seed"] = seed
            _set(raw, "train.seed", seed, where)
            runs.append(RunSpec("/".join(values.values()), values, seed, _validate(raw, where)))
    _check_budget(runs, path)
    return grid, runs


def _checked(schema: type[Schema], raw: Any, where: str) -> Schema:
    """``raw`` as a ``schema``, or a ``GridError`` naming ``where`` and the first bad field."""
    try:
        return schema.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise GridError(f"{where}: {loc}: {first['msg']}") from None


def _validate(raw: Any, where: str) -> Recipe:
    return _checked(Recipe, raw, where)


def tokens_per_run(recipe: Recipe) -> int:
    """Training tokens: steps x batch_size x grad_accum x seq_len."""
    t = recipe.train
    return t.steps * t.batch_size * t.grad_accum * t.seq_len


def matmul_flops(recipe: Recipe) -> float:
    """Active matmul FLOPs per training token (vocabulary from the tokenizer section)."""
    cfg = recipe.model
    if cfg.vocab_size is None:
        cfg = cfg.model_copy(update={"vocab_size": recipe.tokenizer.vocab_size})
    return flops_per_token(cfg, recipe.train.seq_len)["matmul"]


def _check_budget(runs: list[RunSpec], path: Path) -> None:
    first = runs[0]
    for r in runs[1:]:
        if tokens_per_run(r.recipe) != tokens_per_run(first.recipe):
            raise GridError(
                f"{path}: {r.name} trains on {tokens_per_run(r.recipe)} tokens, {first.name} on "
                f"{tokens_per_run(first.recipe)}: every run needs the same token budget"
            )
        a, b = matmul_flops(r.recipe), matmul_flops(first.recipe)
        if abs(a - b) > FLOPS_TOLERANCE * b:
            raise GridError(
                f"{path}: {r.name} has {a:.4g} active matmul FLOPs per token, {first.name} "
                f"{b:.4g} (more than {FLOPS_TOLERANCE:.0%} apart): widen or narrow its MLP"
            )
