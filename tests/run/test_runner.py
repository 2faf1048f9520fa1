"""The runner with small real stages: order, skipping, needs, changed recipes, failures."""

import importlib
import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from superlab.common import atomic_write_json
from superlab.common.rundir import OPERATIONAL
from superlab.config import Recipe
from superlab.run import RunError, Stage, run_recipe
from superlab.run.runner import StageFailed

STAGE_CODE = textwrap.dedent(
    """
    import os
    from pathlib import Path

    def run(ctx):
        name = __name__.split("_", 1)[1]
        calls = Path(os.environ["FAKE_CALLS"])
        with calls.open("a") as f:
            f.write(name + "\\n")
        if os.environ.get("FAKE_FAIL") == name:
            raise ValueError("boom in " + name)
        if os.environ.get("FAKE_INTERRUPT") == name:
            raise KeyboardInterrupt
        (ctx.run.root / f"{name}.out").write_text("ok")
        return {"made": name}

    def check(ctx):
        name = __name__.split("_", 1)[1]
        with Path(os.environ["FAKE_CALLS"]).open("a") as f:
            f.write("check-" + name + "\\n")
        if os.environ.get("FAKE_STALE") == name:
            from superlab.common import StageError
            raise StageError(name + "'s inputs changed")
    """
)


@pytest.fixture
def table(tmp_path, monkeypatch) -> tuple[Stage, ...]:
    mods = tmp_path / "mods"
    mods.mkdir()
    for name in ("a", "b", "c"):
        (mods / f"fakestage_{name}.py").write_text(STAGE_CODE)
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.setenv("FAKE_CALLS", str(tmp_path / "calls.txt"))
    return (
        Stage("a", (), fake("a").run, "first"),
        Stage("b", ("a",), fake("b").run, "needs a"),
        Stage("c", (), fake("c").run, "independent"),
    )


def fake(name: str):
    """The fake stage module ``name`` written by the ``table`` fixture."""
    return importlib.import_module(f"fakestage_{name}")


def calls(tmp_path: Path) -> list[str]:
    p = tmp_path / "calls.txt"
    return p.read_text().split() if p.exists() else []


def recipe(**kw) -> Recipe:
    return Recipe.model_validate({"name": "r", **kw})


def test_runs_in_order_writes_markers_and_resolved_recipe(tmp_path, table):
    res = run_recipe(recipe(), tmp_path / "runs", table=table)
    assert calls(tmp_path) == ["a", "b", "c"]
    assert [o.status for o in res.outcomes] == ["ran"] * 3
    run = res.run
    assert json.loads(run.marker("b").read_text())["summary"] == {"made": "b"}
    assert "grad_clip: 1.0" in run.recipe.read_text()  # defaults filled in
    assert "stage b complete" in run.log.read_text()


def test_rerun_of_finished_run_does_nothing(tmp_path, table):
    run_recipe(recipe(), tmp_path / "runs", table=table)
    res = run_recipe(recipe(), tmp_path / "runs", table=table)
    assert calls(tmp_path) == ["a", "b", "c"]
    assert res.nothing_to_do
    assert "nothing to do" in res.run.log.read_text()


def test_failed_stage_leaves_no_marker_and_rerun_resumes_there(tmp_path, table, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "b")
    with pytest.raises(StageFailed, match="stage b failed: ValueError: boom in b"):
        run_recipe(recipe(), tmp_path / "runs", table=table)
    run = tmp_path / "runs" / "r"
    assert (run / ".done" / "a.json").exists() and not (run / ".done" / "b.json").exists()
    assert "Traceback" in (run / "run.log").read_text()
    monkeypatch.delenv("FAKE_FAIL")
    res = run_recipe(recipe(), tmp_path / "runs", table=table)
    assert calls(tmp_path) == ["a", "b", "b", "c"]
    assert [o.status for o in res.outcomes] == ["done before", "ran", "ran"]


def test_interrupt_propagates_and_marks_nothing(tmp_path, table, monkeypatch):
    monkeypatch.setenv("FAKE_INTERRUPT", "c")
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe(), tmp_path / "runs", table=table)
    assert not (tmp_path / "runs" / "r" / ".done" / "c.json").exists()
    assert "interrupted" in (tmp_path / "runs" / "r" / "run.log").read_text()


def test_subset_needs_prerequisites(tmp_path, table):
    with pytest.raises(RunError, match="stage b needs a, which is not complete"):
        run_recipe(recipe(), tmp_path / "runs", ["b"], table=table)
    assert calls(tmp_path) == []
    run_recipe(recipe(), tmp_path / "runs", ["a"], table=table)
    run_recipe(recipe(), tmp_path / "runs", ["b"], table=table)
    assert calls(tmp_path) == ["a", "b"]


def test_unknown_stage_is_named(tmp_path, table):
    with pytest.raises(RunError, match="unknown stage 'x'; stages are a, b, c"):
        run_recipe(recipe(), tmp_path / "runs", ["a", "x"], table=table)


def test_changed_recipe_is_refused_with_the_fields_that_changed(tmp_path, table):
    run_recipe(recipe(), tmp_path / "runs", ["a"], table=table)
    with pytest.raises(RunError, match=r"train.steps: 200 -> 50"):
        run_recipe(recipe(train={"steps": 50}), tmp_path / "runs", table=table)
    assert calls(tmp_path) == ["a"]


def test_busy_run_dir_is_refused(tmp_path, table):
    import fcntl

    root = tmp_path / "runs" / "r"
    root.mkdir(parents=True)
    with open(root / ".lock", "w") as f:
        f.write("4242")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        import multiprocessing as mp

        # flock is per open file description: a second process sees the lock.
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_try_run, args=(tmp_path, table, q))
        p.start()
        p.join(30)
        assert "in use by another superlab process (pid 4242)" in q.get(timeout=5)


def _try_run(tmp_path, table, q):
    try:
        run_recipe(recipe(), tmp_path / "runs", table=table)
        q.put("ran")
    except RunError as e:
        q.put(str(e))


def test_refresh_stage_reruns_after_other_work(tmp_path, table):
    refreshing = (*table[:2], Stage("c", (), fake("c").run, "report-like", refresh=True))
    run_recipe(recipe(), tmp_path / "runs", table=refreshing)
    run_recipe(recipe(), tmp_path / "runs", table=refreshing)  # nothing ran: no refresh
    assert calls(tmp_path) == ["a", "b", "c"]
    (tmp_path / "runs" / "r" / ".done" / "b.json").unlink()
    res = run_recipe(recipe(), tmp_path / "runs", ["b"], table=refreshing)
    assert calls(tmp_path) == ["a", "b", "c", "b", "c"]  # c refreshed though not selected
    assert [o.name for o in res.outcomes] == ["b", "c"]


def test_executor_and_workers_changes_resume_and_update_recipe_yaml(tmp_path, table):
    run_recipe(recipe(data={"workers": 4}), tmp_path / "runs", ["a"], table=table)
    # after an out-of-memory kill, fewer workers (or another executor) must resume the run
    res = run_recipe(recipe(data={"workers": 1, "executor": "ray"}), tmp_path / "runs", table=table)
    assert [o.status for o in res.outcomes] == ["done before", "ran", "ran"]
    stored = yaml.safe_load(res.run.recipe.read_text())
    assert (stored["data"]["workers"], stored["data"]["executor"]) == (1, "ray")
    assert "recipe.yaml updated: data.executor: 'local' -> 'ray'; data.workers: 4 -> 1" in (
        res.run.log.read_text()
    )
    with pytest.raises(RunError) as err:  # a real change is still refused, named alone
        run_recipe(recipe(data={"workers": 2, "heldout_fraction": 0.1}), tmp_path / "runs")
    assert "different recipe: data.heldout_fraction: 0.02 -> 0.1. Give" in str(err.value)
    assert yaml.safe_load(res.run.recipe.read_text())["data"]["workers"] == 1


def test_operational_fields_are_recipe_fields():
    resolved = recipe().resolved()
    for path in OPERATIONAL:
        node = resolved
        for key in path.split("."):
            node = node[key]  # KeyError: a renamed field left behind in OPERATIONAL


def checked(table):
    return (replace(table[0], check=fake("a").check), *table[1:])


def test_checked_stage_is_checked_on_every_run_even_when_complete(tmp_path, table, monkeypatch):
    table = checked(table)
    run_recipe(recipe(), tmp_path / "runs", table=table)
    assert calls(tmp_path) == ["check-a", "a", "b", "c"]
    monkeypatch.setenv("FAKE_STALE", "a")
    with pytest.raises(RunError, match=r"^a's inputs changed$"):
        run_recipe(recipe(), tmp_path / "runs", table=table)  # not "nothing to do"
    (tmp_path / "runs" / "r" / ".done" / "b.json").unlink()
    with pytest.raises(RunError, match=r"^a's inputs changed$"):  # b builds on a
        run_recipe(recipe(), tmp_path / "runs", ["b"], table=table)
    (tmp_path / "runs" / "r" / ".done" / "c.json").unlink()
    run_recipe(recipe(), tmp_path / "runs", ["c"], table=table)  # c does not use a
    assert calls(tmp_path) == ["check-a", "a", "b", "c", "check-a", "check-a", "c"]


def test_a_post_training_section_may_change_until_its_stage_begins(tmp_path, table):
    runs = tmp_path / "runs"
    res = run_recipe(recipe(), runs, table=table)  # pre-trained without an sft section
    atomic_write_json(
        res.run.marker("sft"), {"summary": {"skipped": "the recipe has no sft section"}}
    )
    sft = {"generate": "arithmetic", "train": {"steps": 5}}
    res = run_recipe(recipe(sft=sft), runs, table=table)  # added afterwards: allowed
    assert yaml.safe_load(res.run.recipe.read_text())["sft"]["train"]["steps"] == 5
    assert not res.run.marker("sft").exists()  # the skip is forgotten, so sft will run
    res = run_recipe(recipe(sft={**sft, "train": {"steps": 7}}), runs, table=table)
    assert "recipe.yaml updated: sft.train.steps: 5 -> 7" in res.run.log.read_text()
    (res.run.ckpt / "sft").mkdir(parents=True)  # the stage has begun: now it is the run's
    with pytest.raises(RunError, match=r"different recipe: sft.train.steps: 7 -> 9\. "):
        run_recipe(recipe(sft={**sft, "train": {"steps": 9}}), runs, table=table)
    with pytest.raises(RunError, match=r"data\.heldout_fraction"):  # other sections as before
        run_recipe(recipe(sft=sft, data={"heldout_fraction": 0.1}), runs, table=table)
