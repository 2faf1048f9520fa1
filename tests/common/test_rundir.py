"""The recipe check of a run directory: fields added to the schema later do not block."""

from __future__ import annotations

import yaml

from superlab.common import RunDir
from superlab.common.rundir import stored_recipe_changes
from superlab.config.recipe import Recipe


def _store(run: RunDir, tree: dict) -> None:
    run.root.mkdir(parents=True, exist_ok=True)
    run.recipe.write_text(yaml.safe_dump(tree))


def test_a_section_added_since_the_run_takes_its_default_and_blocks_nothing(tmp_path):
    run = RunDir(tmp_path / "run")
    now = Recipe.model_validate({"name": "r"}).resolved()
    older = {k: v for k, v in now.items() if k != "rl"}  # written before the rl section
    older["train"] = {k: v for k, v in now["train"].items() if k != "threads"}
    _store(run, older)
    assert stored_recipe_changes(run, now) == ([], [])


def test_a_stored_value_still_counts_as_written(tmp_path):
    run = RunDir(tmp_path / "run")
    now = Recipe.model_validate({"name": "r"}).resolved()
    older = {k: v for k, v in now.items() if k != "rl"}
    older["train"] = {**now["train"], "lr": now["train"]["lr"] * 2}
    _store(run, older)
    blocking, _ = stored_recipe_changes(run, now)
    assert blocking == [f"train.lr: {now['train']['lr'] * 2!r} -> {now['train']['lr']!r}"]


def test_a_stored_recipe_that_no_longer_validates_is_diffed_as_written(tmp_path):
    run = RunDir(tmp_path / "run")
    now = Recipe.model_validate({"name": "r"}).resolved()
    _store(run, {**now, "retired_section": {"x": 1}})
    blocking, _ = stored_recipe_changes(run, now)
    assert blocking == ["retired_section: {'x': 1} -> <unset>"]
