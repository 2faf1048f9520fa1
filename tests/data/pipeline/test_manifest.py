"""The manifest refuses other inputs or settings, finished or not, and says what changed."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from superlab.cli import app
from superlab.common import StageError
from superlab.config import Recipe
from superlab.data.manifest import config_changes, fingerprint
from superlab.data.stage import run
from superlab.plan import stage as plan_stage
from superlab.run import RunError, run_recipe
from superlab.run.stages import STAGES, Stage

from .corpus import context, make_inputs, outputs, recipe


@pytest.fixture
def done(tmp_path: Path) -> tuple[list[Path], Path]:
    """Inputs, and a run directory whose data stage completed on them."""
    paths = make_inputs(tmp_path / "src", files=2, per_file=5)
    run(context(tmp_path / "run", recipe(paths, workers=1)))
    return paths, tmp_path / "run"


def test_changed_input_is_named(done: tuple[list[Path], Path]) -> None:
    paths, run_dir = done
    with open(paths[1], "a", encoding="utf-8") as f:
        f.write('{"text": "one more line"}\n')
    msg = re.escape(f"input changed: {paths[1]} (size, mtime_ns, sha256_ends)")
    with pytest.raises(StageError, match=msg):
        run(context(run_dir, recipe(paths, workers=1)))


def test_added_and_removed_inputs_are_named(done: tuple[list[Path], Path]) -> None:
    paths, run_dir = done
    extra = make_inputs(paths[0].parent / "more", files=1, per_file=2)[0]
    with pytest.raises(StageError, match=re.escape(f"inputs added: {extra}")):
        run(context(run_dir, recipe([*paths, extra])))
    with pytest.raises(StageError, match=re.escape(f"inputs removed: {paths[1]}")):
        run(context(run_dir, recipe(paths[:1])))


def test_changed_settings_are_named_by_dotted_path(done: tuple[list[Path], Path]) -> None:
    paths, run_dir = done
    changed = recipe(paths, filters={"min_words": 10}, dedup={"exact": False})
    with pytest.raises(StageError) as err:
        run(context(run_dir, changed))
    assert (
        "settings changed: data.filters.min_words (50 -> 10), data.dedup.exact (true -> false)"
        in (str(err.value))
    )


def test_executor_and_workers_may_change(done: tuple[list[Path], Path]) -> None:
    paths, run_dir = done
    run(context(run_dir, recipe(paths, workers=2)))  # nothing to redo, and no refusal


def test_config_changes_lists_leaves() -> None:
    old = {"a": {"b": 1, "c": [1]}, "d": None}
    new = {"a": {"b": 2, "c": [1]}, "e": 3}
    assert config_changes(old, new) == ["a.b (1 -> 2)", "d (null -> absent)", "e (absent -> 3)"]


def _write_recipe(path: Path, rec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(rec), encoding="utf-8")
    return path


def test_changed_input_refuses_a_complete_run_in_one_line_exit_2(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path / "src", files=2, per_file=5)
    rec = _write_recipe(tmp_path / "r.yaml", recipe(paths, workers=1))
    args = ["data", str(rec), "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already complete: nothing to do" in again.output
    with open(paths[1], "a", encoding="utf-8") as f:
        f.write('{"text": "one more line"}\n')
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    out = res.output.strip()
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert out.startswith(f"error: {tmp_path / 'runs' / 't'}: the data stage is complete, but")
    assert f"input changed: {paths[1]} (size, mtime_ns, sha256_ends)" in out


def test_changed_input_refuses_a_later_stage_that_builds_on_data(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path / "src", files=1, per_file=5)
    rec = Recipe.model_validate(recipe(paths, workers=1))
    # the real data stage, and a quick stand-in for train (were the check missing, it would run)
    table = (STAGES[0], Stage("train", ("data",), plan_stage.run, "stand-in"))
    run_recipe(rec, tmp_path / "runs", ["data"], table=table)
    paths[0].unlink()
    with pytest.raises(RunError, match=re.escape(f"data.source: {paths[0]}: no such file")):
        run_recipe(rec, tmp_path / "runs", ["train"], table=table)  # on stale shards


def test_workers_and_executor_never_block_a_resume(tmp_path: Path) -> None:
    paths = make_inputs(tmp_path / "src", files=2, per_file=5)
    runs = tmp_path / "runs"
    res = run_recipe(Recipe.model_validate(recipe(paths, workers=1)), runs, ["data"])
    before = outputs(res.run.root)
    # as if killed during pack: the stage is unfinished, pack must be redone
    res.run.marker("data").unlink()
    (res.run.data_work / "pack.done.json").unlink()
    res = run_recipe(Recipe.model_validate(recipe(paths, workers=2)), runs, ["data"])
    assert [o.status for o in res.outcomes] == ["ran"]
    assert outputs(res.run.root) == before
    # another executor on a complete run: nothing to do, and Ray is never started
    ray = Recipe.model_validate(recipe(paths, executor="ray", workers=3))
    assert run_recipe(ray, runs, ["data"]).nothing_to_do
    stored = yaml.safe_load(res.run.recipe.read_text(encoding="utf-8"))["data"]
    assert (stored["executor"], stored["workers"]) == ("ray", 3)
    changed = Recipe.model_validate(recipe(paths, workers=1, filters={"min_words": 10}))
    with pytest.raises(RunError, match=r"different recipe: data.filters.min_words: 50 -> 10\. "):
        run_recipe(changed, runs, ["data"])


def test_known_fingerprint_is_reused_only_while_size_and_mtime_match(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "aaaa"}\n', encoding="utf-8")
    known = fingerprint(str(path))
    st = path.stat()
    path.write_text('{"text": "bbbb"}\n', encoding="utf-8")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime put back
    assert fingerprint(str(path), known) == known  # not read: the quick check for complete runs
    assert fingerprint(str(path))["sha256_ends"] != known["sha256_ends"]  # a full one sees it
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert fingerprint(str(path), known)["sha256_ends"] != known["sha256_ends"]
