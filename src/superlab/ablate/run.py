"""Run an ablation grid one run after another, resumably, then compare the runs.

Each run is an ordinary run directory ``<runs-dir>/<run name>/`` driven by
``superlab.run.run_recipe`` (stages data, train, eval), so an interrupted ablation
resumes where it stopped: finished stages are skipped and training continues from the
newest checkpoint. The grid's runs differ only outside ``data`` and ``tokenizer``, so
the first run's data stage is done once and its outputs (``data/shards``,
``data/stats.json``, ``tokenizer/``) are hard-linked into every later run, with a
data completion marker that names the run it came from.

``jobs`` runs that many at once, each in its own process (after the shared data stage):
on a machine with ``jobs`` cores and ``train.threads: 1`` that is ``jobs`` times the
throughput of one after another, and every run's numbers are the same either way (each
run is seeded and single-process). A failed run stops the ablation once the runs under
way have finished; their progress lives in each run's ``run.log``. Ctrl-C or SIGTERM stops
the runs under way (each saves a checkpoint) and starts no other; the same command
resumes them.

The comparison (``<runs-dir>/<grid name>/ablation.json`` and ``report.html``) is
rebuilt from whatever runs are complete; see ``superlab.ablate.table``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from superlab.ablate.grid import GridError, RunSpec, expand
from superlab.ablate.report import write_report
from superlab.ablate.table import collect, summarize
from superlab.common import RunDir, atomic_write_json
from superlab.common.lifeline import die_with
from superlab.run import run_recipe
from superlab.run.display import Display
from superlab.run.runner import sigterm_as_interrupt


def _link_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` with hard links (a plain copy across file systems)."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)


def share_data(source: RunDir, target: RunDir) -> None:
    """Give ``target`` the data stage outputs of ``source`` and mark its data stage done."""
    if target.marker("data").exists():
        return
    _link_tree(source.shards, target.shards)
    _link_tree(source.tokenizer_dir, target.tokenizer_dir)
    shutil.copy2(source.data_stats, target.data_stats)
    summary = json.loads(source.marker("data").read_text()).get("summary", {})
    atomic_write_json(
        target.marker("data"),
        {"stage": "data", "seconds": 0.0, "summary": summary, "shared_from": str(source.root)},
    )


def _train_and_eval(spec: RunSpec, runs_dir: Path) -> str:
    """One run's train and eval stages, quietly (a worker process of ``ablate``).

    Interrupted (Ctrl-C, or SIGTERM from the parent), the run saves its checkpoint and
    the worker process exits, so that the pool starts no further run.
    """
    try:
        run_recipe(spec.recipe, runs_dir, ["data", "train", "eval"], Display(quiet=True))
    except KeyboardInterrupt:
        os._exit(130)
    return spec.name


def _run_parallel(
    runs: list[RunSpec],
    runs_dir: Path,
    jobs: int,
    on_done: Callable[[int, int, str], None] | None,
) -> None:
    # spawn: workers are this process's children (so an interrupt can reach them) and
    # start without inherited threads or torch state; each ends when this process dies, even
    # by SIGKILL, instead of training on as an orphan.
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with,
        initargs=(os.getpid(),),
    )
    try:
        with sigterm_as_interrupt():  # SIGTERM unwinds this process like Ctrl-C
            pending = {pool.submit(_train_and_eval, spec, runs_dir) for spec in runs}
            finished = 0
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):  # a worker was interrupted
                        raise KeyboardInterrupt from error
                    if error is not None:
                        raise error
                    finished += 1
                    if on_done is not None:
                        on_done(finished, len(runs), future.result())
    except BaseException:
        # Stop the runs under way (each saves a checkpoint first) and start no other.
        pool.shutdown(wait=False, cancel_futures=True)
        workers = multiprocessing.active_children()
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(timeout=120)
        raise
    pool.shutdown(wait=True)


def ablate(
    grid_path: str | Path,
    runs_dir: str | Path = "runs",
    display: Display | None = None,
    on_run: Callable[[int, int, RunSpec], None] | None = None,
    jobs: int = 1,
    on_done: Callable[[int, int, str], None] | None = None,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Run every run of the grid not complete yet, then write the comparison; return it.

    One after another (``jobs == 1``), ``on_run(k, n, spec)`` is called as run ``k`` of
    ``n`` starts; in parallel, ``on_done(k, n, name)`` as the ``k``-th run finishes.
    ``seeds`` keeps only the runs of those of the grid's seeds (a first look before the
    rest; the comparison then covers those runs only).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    grid, runs = expand(grid_path)
    if seeds is not None:
        unknown = sorted(set(seeds) - set(grid.seeds))
        if unknown:
            raise GridError(
                f"{grid_path}: seeds {unknown} are not among the grid's seeds {grid.seeds}"
            )
        runs = [r for r in runs if r.seed in seeds]
    runs_dir = Path(runs_dir)
    first = RunDir(runs_dir / runs[0].name)
    if jobs == 1:
        for k, spec in enumerate(runs):
            if on_run is not None:
                on_run(k, len(runs), spec)
            target = RunDir(runs_dir / spec.name)
            if k > 0:
                target.root.mkdir(parents=True, exist_ok=True)
                share_data(first, target)
            run_recipe(spec.recipe, runs_dir, ["data", "train", "eval"], display)
    else:
        run_recipe(runs[0].recipe, runs_dir, ["data"], display)  # the shared data stage
        for spec in runs[1:]:
            target = RunDir(runs_dir / spec.name)
            target.root.mkdir(parents=True, exist_ok=True)
            share_data(first, target)
        _run_parallel(runs, runs_dir, jobs, on_done)
    out = RunDir(runs_dir / grid.name).root
    rows = collect(runs, runs_dir)
    table = summarize(rows)
    result = {"grid": grid.name, "runs": rows, "configs": table}
    atomic_write_json(out / "ablation.json", result)
    write_report(grid.name, rows, table, out / "report.html")
    return result
