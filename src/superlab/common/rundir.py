"""The layout of ``runs/<name>/`` (see DESIGN.md, "A run"): one place names every path.

Also the one rule for which recipe changes a run directory may be resumed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superlab.common.treediff import leaf_diff

# Recipe fields that decide how a run is carried out, never what it writes: the data
# stage's outputs are byte-identical whatever the executor and the number of workers
# (tests/data/pipeline/test_determinism.py). Changing them never blocks a resume (after
# an out-of-memory kill, fewer workers is the usual fix), and the data manifest leaves
# them out. Every other field changes results. CLI switches such as --quiet are not
# recipe fields and never reach this check.
OPERATIONAL = frozenset({"data.executor", "data.workers"})


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory. Creating the object touches nothing on disk."""

    root: Path

    @property
    def recipe(self) -> Path:
        return self.root / "recipe.yaml"

    @property
    def log(self) -> Path:
        return self.root / "run.log"

    @property
    def markers(self) -> Path:
        """Stage completion markers, ``<stage>.json``, written last by atomic rename."""
        return self.root / ".done"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def data_work(self) -> Path:
        """Intermediate data-step outputs and their own completion markers."""
        return self.data / "work"

    @property
    def shards(self) -> Path:
        return self.data / "shards"

    @property
    def data_stats(self) -> Path:
        return self.data / "stats.json"

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / "tokenizer"

    @property
    def tokenizer(self) -> Path:
        return self.tokenizer_dir / "tokenizer.json"

    @property
    def ckpt(self) -> Path:
        return self.root / "ckpt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.root / "eval.json"

    @property
    def samples(self) -> Path:
        return self.root / "samples.json"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def marker(self, stage: str) -> Path:
        return self.markers / f"{stage}.json"


def recipe_changes(before: Any, after: Any) -> tuple[list[str], list[str]]:
    """Leaves that differ between two resolved recipes, ``field: old -> new``, split in two:
    those that block a resume, and those in ``OPERATIONAL``, which do not."""
    blocking: list[str] = []
    operational: list[str] = []
    for path, old, new in leaf_diff(before, after):
        where = operational if path in OPERATIONAL else blocking
        where.append(f"{path}: {old!r} -> {new!r}")
    return blocking, operational


def without_operational(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A copy of (part of) a resolved recipe without its ``OPERATIONAL`` fields.

    ``prefix`` is the dotted path of ``tree`` itself ("" for the whole recipe).
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path in OPERATIONAL:
            continue
        out[key] = without_operational(value, path + ".") if isinstance(value, dict) else value
    return out


def stored_recipe_changes(
    run: RunDir, resolved: dict[str, Any], ignore: tuple[str, ...] = ()
) -> tuple[list[str], list[str]] | None:
    """``recipe_changes`` from the run's stored recipe.yaml to ``resolved``; None if none.

    Top-level sections named in ``ignore`` are left out on both sides (``superlab eval``
    may change the ``eval`` section of a finished run). An unreadable recipe.yaml raises
    ``ValueError`` naming the file.
    """
    import yaml

    if not run.recipe.is_file():
        return None
    try:
        before = yaml.safe_load(run.recipe.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{run.recipe}: unreadable ({e}); move the run directory aside") from None
    before = _with_new_defaults(before)
    before = {k: v for k, v in before.items() if k not in ignore}
    now = {k: v for k, v in resolved.items() if k not in ignore}
    return recipe_changes(before, now)


def _with_new_defaults(stored: Any) -> Any:
    """A stored (resolved) recipe with the fields added to the schema since it was written
    filled in with their defaults, so that upgrading superlab does not block a resume; every
    stored value stays as written. Unchanged if it no longer validates (the diff says why)."""
    from superlab.config.recipe import Recipe

    if not isinstance(stored, dict):
        return stored
    try:
        filled = Recipe.model_validate(stored).resolved()
    except ValueError:
        return stored
    return _merge(filled, stored)


def _merge(filled: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with the keys only ``filled`` has, at every depth."""
    out = dict(stored)
    for key, value in filled.items():
        if key not in stored:
            out[key] = value
        elif isinstance(value, dict) and isinstance(stored[key], dict):
            out[key] = _merge(value, stored[key])
    return out
