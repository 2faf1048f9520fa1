"""Run an ablation grid one run after another, resumably, then compare the runs.

Each run is an ordinary run directory ``<runs-dir>/<run name>/`` driven by
``superlab.run.run_recipe`` (stages data, train, eval), so an interrupted ablation
resumes where it stopped: finished stages are skipped and training continues from the
newest checkpoint. The grid's runs differ only outside ``data`` and ``tokenizer``, so
the first run's data stage is done once and its outputs (``data/shards``,
``data/stats.json``, ``tokenizer/``) are hard-linked into every later run, with a
data completion marker that names the run it came from.

The comparison (``<runs-dir>/<grid name>/ablation.json`` and ``report.html``) is
rebuilt from whatever runs are complete; see ``superlab.ablate.table``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superlab.ablate.grid import RunSpec, expand
from superlab.ablate.report import write_report
from superlab.ablate.table import collect, summarize
from superlab.common import RunDir, atomic_write_json
from superlab.run import run_recipe
from superlab.run.display import Display


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


def ablate(
    grid_path: str | Path,
    runs_dir: str | Path = "runs",
    display: Display | None = None,
    on_run: Callable[[int, int, RunSpec], None] | None = None,
) -> dict[str, Any]:
    """Run every run of the grid not complete yet, then write the comparison; return it."""
    grid, runs = expand(grid_path)
    runs_dir = Path(runs_dir)
    first = RunDir(runs_dir / runs[0].name)
    for k, spec in enumerate(runs):
        if on_run is not None:
            on_run(k, len(runs), spec)
        target = RunDir(runs_dir / spec.name)
        if k > 0:
            target.root.mkdir(parents=True, exist_ok=True)
            share_data(first, target)
        run_recipe(spec.recipe, runs_dir, ["data", "train", "eval"], display)
    out = RunDir(runs_dir / grid.name).root
    rows = collect(runs, runs_dir)
    table = summarize(rows)
    result = {"grid": grid.name, "runs": rows, "configs": table}
    atomic_write_json(out / "ablation.json", result)
    write_report(grid.name, rows, table, out / "report.html")
    return result
