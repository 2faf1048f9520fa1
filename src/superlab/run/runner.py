"""Execute stages in order, each once: completion markers make a run resumable.

A stage is complete when ``.done/<stage>.json`` exists; the marker is written last,
by atomic rename, after the stage's outputs. Re-running skips complete stages; an
interrupted stage is started again and resumes its own finished sub-steps.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from superlab.common import RunDir, StageContext, StageError, atomic_write_json, atomic_write_text
from superlab.common.rundir import stored_recipe_changes
from superlab.config import Recipe
from superlab.run.display import Display
from superlab.run.stages import STAGES, Stage, select


class RunError(RuntimeError):
    """The run cannot start as asked (wrong stages, changed recipe, busy directory)."""


class StageFailed(RuntimeError):
    """A stage raised; the message names the stage, the traceback is in run.log."""


@dataclass
class StageOutcome:
    """What happened to one stage in this invocation."""

    name: str
    status: str  # "ran", "done before", "failed", "interrupted"
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """The outcome of ``run_recipe``: the run directory and one outcome per selected stage."""

    run: RunDir
    outcomes: list[StageOutcome]

    @property
    def nothing_to_do(self) -> bool:
        return all(o.status == "done before" for o in self.outcomes)


def run_recipe(
    recipe: Recipe,
    runs_dir: str | Path = "runs",
    stages: list[str] | None = None,
    display: Display | None = None,
    table: tuple[Stage, ...] = STAGES,
) -> RunResult:
    """Run the selected stages of ``recipe`` into ``runs_dir/<name>/``."""
    run = RunDir(Path(runs_dir) / recipe.name)
    try:
        selected = select(stages, table)
    except ValueError as e:
        raise RunError(str(e)) from None
    display = display or Display(quiet=True)
    operational = _check_recipe(run, recipe)
    _check_needs(run, selected)
    with _lock(run), _logging(run) as log, display.logging_to_console(log), sigterm_as_interrupt():
        for section in POST_SECTIONS:  # a section added since its stage skipped: run it now
            if getattr(recipe, section, None) is not None and _skipped(run, section):
                run.marker(section).unlink()
        todo = [s for s in selected if not run.marker(s.name).exists()]
        _check_stages(run, recipe, log, selected, todo, table)
        # Operational changes are written back, atomically, so recipe.yaml says how the
        # run is being carried out now.
        if operational or not run.recipe.exists():
            atomic_write_text(run.recipe, yaml.safe_dump(recipe.resolved(), sort_keys=False))
        if operational:
            log.info(
                "recipe.yaml updated: %s (nothing already made depends on these)",
                "; ".join(operational),
            )
        outcomes = []
        if not todo:
            log.info("run %s: every selected stage is already complete; nothing to do", recipe.name)
        for stage in selected:
            ran_other = any(o.status == "ran" for o in outcomes)
            if stage not in todo and not (stage.refresh and ran_other):
                outcomes.append(StageOutcome(stage.name, "done before", **_marker_info(run, stage)))
                continue
            outcomes.append(_run_stage(stage, recipe, run, log, display))
        if any(o.status == "ran" for o in outcomes):
            for stage in table:
                if stage.refresh and stage not in selected and run.marker(stage.name).exists():
                    outcomes.append(_run_stage(stage, recipe, run, log, display))
        return RunResult(run, outcomes)


def _run_stage(
    stage: Stage, recipe: Recipe, run: RunDir, log: logging.Logger, display: Display
) -> StageOutcome:
    log.info("stage %s: %s", stage.name, stage.about)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    ctx = StageContext(recipe=recipe, run=run, log=log)
    try:
        with display.stage(stage.name, ctx):
            summary = stage.run(ctx) or {}
    except KeyboardInterrupt as e:
        why = f" ({e})" if str(e) else ""
        log.warning("stage %s interrupted%s; run the same command again to resume", stage.name, why)
        raise
    except StageError as e:
        log.error("stage %s failed: %s", stage.name, e)
        raise StageFailed(f"stage {stage.name} failed: {e}") from e
    except Exception as e:
        log.debug("stage %s traceback:\n%s", stage.name, traceback.format_exc())
        log.error(
            "stage %s failed: %s: %s (traceback in %s)", stage.name, type(e).__name__, e, run.log
        )
        raise StageFailed(f"stage {stage.name} failed: {type(e).__name__}: {e}") from e
    seconds = time.perf_counter() - t0
    atomic_write_json(
        run.marker(stage.name),
        {
            "stage": stage.name,
            "started": started.isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
            "summary": summary,
        },
    )
    log.info("stage %s complete in %.1fs", stage.name, seconds)
    return StageOutcome(stage.name, "ran", seconds, summary)


def _marker_info(run: RunDir, stage: Stage) -> dict[str, Any]:
    import json

    try:
        m = json.loads(run.marker(stage.name).read_text())
        return {"seconds": float(m.get("seconds", 0.0)), "summary": m.get("summary", {})}
    except (OSError, ValueError):
        return {}


# Post-training sections: each is read only by its own stage, so it may be added or changed
# until that stage begins (pre-train first, then decide how to fine-tune).
POST_SECTIONS = ("sft", "pref", "rl")


def _skipped(run: RunDir, section: str) -> bool:
    """Whether ``section``'s stage ran without its recipe section (and so did nothing)."""
    import json

    try:
        summary = json.loads(run.marker(section).read_text()).get("summary", {})
    except (OSError, ValueError):
        return False
    return str(summary.get("skipped", "")).startswith("the recipe has no")


def _section_not_begun(run: RunDir, section: str) -> bool:
    """Whether ``section`` is a post-training section whose stage has made nothing yet: no
    completion marker (or one for a run without the section), no ``ckpt/<section>/``, no
    ``<run>/<section>/``."""
    return (
        section in POST_SECTIONS
        and (not run.marker(section).exists() or _skipped(run, section))
        and not (run.ckpt / section).exists()
        and not (run.root / section).exists()
    )


def _check_recipe(run: RunDir, recipe: Recipe) -> list[str]:
    """Refuse to continue a run directory that was made with a different recipe.

    Changes to ``OPERATIONAL`` fields (executor, workers) do not block, nor do changes to a
    post-training section whose stage has not begun; they are returned (and recorded).
    """
    try:
        found = stored_recipe_changes(run, recipe.resolved())
    except ValueError as e:
        raise RunError(str(e)) from None
    if found is None:
        return []
    changes, operational = found
    unused = [c for c in changes if _section_not_begun(run, c.split(":", 1)[0].split(".")[0])]
    changes = [c for c in changes if c not in unused]
    operational = operational + unused
    if changes:
        shown = "; ".join(changes[:5]) + (
            f" (and {len(changes) - 5} more)" if len(changes) > 5 else ""
        )
        raise RunError(
            f"{run.root} was made with a different recipe: {shown}. Give the run a new name "
            f"(--set name=...) or remove {run.root} to start over"
        )
    return operational


def _check_stages(
    run: RunDir,
    recipe: Recipe,
    log: logging.Logger,
    selected: list[Stage],
    todo: list[Stage],
    table: tuple[Stage, ...],
) -> None:
    """Run the ``check`` of every stage that has one and that this invocation selects or uses.

    It runs for complete stages too: a finished data stage whose inputs changed since
    must be refused, not reported as "nothing to do".
    """
    used = {s.name for s in selected} | {n for s in todo for n in s.needs}
    ctx = StageContext(recipe=recipe, run=run, log=log)
    for stage in table:
        if stage.check is not None and stage.name in used:
            try:
                stage.check(ctx)
            except StageError as e:
                raise RunError(str(e)) from None


def _check_needs(run: RunDir, selected: list[Stage]) -> None:
    """Every stage's prerequisites must be complete already or run before it now."""
    names = {s.name for s in selected}
    for stage in selected:
        missing = [n for n in stage.needs if n not in names and not run.marker(n).exists()]
        if missing:
            raise RunError(
                f"stage {stage.name} needs {', '.join(missing)}, which is not complete in "
                f"{run.root}; add it to --stages"
            )


@contextmanager
def _lock(run: RunDir) -> Iterator[None]:
    run.root.mkdir(parents=True, exist_ok=True)
    path = run.root / ".lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise RunError(
                f"{run.root} is in use by another superlab process (pid {f.read().strip() or '?'})"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def _logging(run: RunDir) -> Iterator[logging.Logger]:
    """Log to ``run.log`` (everything, with tracebacks) while the run lasts."""
    log = logging.getLogger("superlab")
    log.setLevel(logging.DEBUG)
    handler = logging.FileHandler(run.log, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        yield log
    finally:
        log.removeHandler(handler)
        handler.close()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so stages save what they can and unwind."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
