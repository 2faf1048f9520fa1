"""The manifest refuses to resume onto other inputs or settings, and says what changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from superlab.common import StageError
from superlab.data.manifest import config_changes
from superlab.data.stage import run

from .corpus import context, make_inputs, recipe


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
