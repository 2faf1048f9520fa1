"""Run a mixture search: one shared data stage, proxy runs, the regression, confirmation runs.

``regmix`` (Liu et al., ICLR 2025): draw ``proxies`` mixtures around the natural token
distribution (``sample``), train a small proxy run on each, fit a regression from weights
to the target (``regress``), score ``search_samples`` simulated mixtures and take the mean
of the ``top_k`` best, then train confirmation runs of the predicted, natural, uniform
and best-proxy mixtures, each once per ``confirm_seeds``. ``leave_one_out``: one run with
the base weights and one per source with that source's weight set to 0.

All runs are ordinary run directories under ``runs_dir`` driven by the ablation runner
(``superlab.ablate.run``: shared data hard-linked from ``<grid>-data``, ``jobs`` runs at
once, resumable); the result is ``<runs_dir>/<grid>/mix.json`` and ``report.html``.
Mixtures that would read a source more than its ``max_epochs`` times are never drawn,
and a fixed one (natural, uniform) that would is left out with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from superlab.ablate.grid import GridError, RunSpec
from superlab.ablate.run import _run_parallel, share_data
from superlab.ablate.table import t975
from superlab.common import RunDir, atomic_write_json
from superlab.mix import regress, sample
from superlab.mix.grid import MixGrid, check_budget, data_recipe, load_mix_grid, run_recipe_for
from superlab.mix.report import write_report
from superlab.run import run_recipe
from superlab.run.display import Display

ROLES = ("predicted", "natural", "uniform", "best_proxy")
Execute = Callable[[list[RunSpec]], None]  # trains and evaluates runs on the shared data


class Budget:
    """What ``max_epochs`` checks need for one kind of run: windows per source, rows drawn."""

    def __init__(self, spec: RunSpec, train_tokens: dict[str, int]) -> None:
        t = spec.recipe.train
        self.rows = t.steps * t.grad_accum * t.batch_size
        self.windows = np.array([max(0, (n - 1) // t.seq_len) for n in train_tokens.values()])
        self.max_epochs = np.array([s.max_epochs for s in spec.recipe.data.sources])

    def feasible(self, weights: np.ndarray) -> np.ndarray:
        return sample.feasible(weights, self.windows, self.max_epochs, self.rows)


def train_tokens(grid: MixGrid, runs_dir: Path) -> dict[str, int] | None:
    """Each source's train tokens from the shared data stage (None before it ran)."""
    path = RunDir(runs_dir / f"{grid.config.name}-data").data_stats
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())["sources"]
    return {s: int(stats[s]["tokens"]["train"]) for s in grid.sources}


def proxy_runs(grid: MixGrid, tokens: dict[str, int]) -> tuple[list[RunSpec], np.ndarray]:
    """The proxy runs and their weights (rows, in ``grid.sources`` order)."""
    cfg, names = grid.config, grid.sources
    probe = run_recipe_for(grid, "probe", sample.natural(tokens), cfg.proxy_seed, "proxy")
    budget = Budget(probe, tokens)
    rng = np.random.default_rng([cfg.seed, 1])
    W = sample.draw_feasible(
        sample.natural(tokens),
        cfg.proxies,
        cfg.concentration,
        budget.windows,
        budget.max_epochs,
        budget.rows,
        rng,
    )
    runs = [
        run_recipe_for(
            grid, f"{cfg.name}-proxy-{i:03d}", dict(zip(names, w, strict=True)), cfg.proxy_seed,
            "proxy",
        )
        for i, w in enumerate(W)
    ]  # fmt: skip
    return runs, W


def target_of(grid: MixGrid, runs_dir: Path, name: str) -> float | None:
    """The run's target (mean held-out metric over the target sources), None if not run."""
    path = runs_dir / name / "eval.json"
    if not path.is_file():
        return None
    by_source = json.loads(path.read_text()).get("heldout_by_source") or {}
    wanted = grid.config.target.sources or grid.sources
    values = [by_source[s][grid.config.target.metric] for s in wanted if by_source.get(s)]
    return float(np.mean(values)) if len(values) == len(wanted) else None


def _execute(
    runs: list[RunSpec],
    grid: MixGrid,
    runs_dir: Path,
    jobs: int,
    display: Display | None,
    on_run: Callable[[int, int, RunSpec], None] | None,
    on_done: Callable[[int, int, str], None] | None,
) -> None:
    """Train and evaluate ``runs`` on the shared data, one after another or ``jobs`` at once."""
    check_budget(runs, grid.path)
    shared = RunDir(runs_dir / f"{grid.config.name}-data")
    for spec in runs:
        target = RunDir(runs_dir / spec.name)
        target.root.mkdir(parents=True, exist_ok=True)
        share_data(shared, target)
    if jobs > 1:
        _run_parallel(runs, runs_dir, jobs, on_done)
        return
    for k, spec in enumerate(runs):
        if on_run is not None:
            on_run(k, len(runs), spec)
        run_recipe(spec.recipe, runs_dir, ["data", "train", "eval"], display)


def _interval(xs: list[float]) -> dict[str, Any]:
    mean = float(np.mean(xs)) if xs else None
    ci = None
    if len(xs) > 1:
        ci = t975(len(xs) - 1) * float(np.std(xs, ddof=1)) / len(xs) ** 0.5
    return {"mean": mean, "ci95": ci, "n": len(xs), "values": xs}


def confirmations(
    grid: MixGrid, mixtures: dict[str, dict[str, float]]
) -> list[tuple[str, RunSpec]]:
    """(role, run) for each mixture and confirmation seed."""
    return [
        (role, run_recipe_for(grid, f"{grid.config.name}-{role}-s{seed}", w, seed, "confirm"))
        for role, w in mixtures.items()
        for seed in grid.config.confirm_seeds
    ]


def mix(
    grid_path: str | Path,
    runs_dir: str | Path = "runs",
    display: Display | None = None,
    jobs: int | None = None,
    on_run: Callable[[int, int, RunSpec], None] | None = None,
    on_done: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Run the search (resuming finished runs), write mix.json and report.html; return it."""
    grid = load_mix_grid(grid_path)
    cfg, names = grid.config, grid.sources
    runs_dir = Path(runs_dir)
    jobs = jobs or cfg.jobs
    run_recipe(data_recipe(grid), runs_dir, ["data"], display)  # the shared data stage
    tokens = train_tokens(grid, runs_dir)
    assert tokens is not None

    def execute(runs: list[RunSpec]) -> None:
        _execute(runs, grid, runs_dir, jobs, display, on_run, on_done)

    search = _leave_one_out if cfg.mode == "leave_one_out" else _regmix
    result = search(grid, runs_dir, tokens, execute)
    result = {"grid": cfg.name, "mode": cfg.mode, "sources": names, "train_tokens": tokens,
              "target": cfg.target.model_dump(), **result}  # fmt: skip
    out = runs_dir / cfg.name
    atomic_write_json(out / "mix.json", result)
    write_report(result, out / "report.html")
    return result


def _regmix(
    grid: MixGrid, runs_dir: Path, tokens: dict[str, int], execute: Execute
) -> dict[str, Any]:
    cfg, names = grid.config, grid.sources
    proxies, W = proxy_runs(grid, tokens)
    execute(proxies)
    y = np.array([target_of(grid, runs_dir, p.name) for p in proxies], dtype=np.float64)
    if np.isnan(y).any():
        raise GridError(f"{grid.path}: some proxy runs have no per-source held-out figures")
    pred_cv, rho = regress.cross_validated(W, y, cfg.regression, cfg.cv_folds, cfg.seed)
    model = regress.fit(W, y, cfg.regression, cfg.seed)
    probe = run_recipe_for(grid, "probe", sample.natural(tokens), 0, "confirm")
    budget = Budget(probe, tokens)
    rng = np.random.default_rng([cfg.seed, 2])
    candidates = sample.dirichlet(
        sample.natural(tokens), cfg.search_samples, cfg.concentration, rng
    )
    candidates = candidates[budget.feasible(candidates)]
    if len(candidates) == 0:
        raise GridError(f"{grid.path}: no simulated mixture keeps every source within max_epochs")
    best_w, best_pred, scored = regress.search(model, candidates, cfg.top_k)
    fixed = {
        "predicted": best_w,
        "natural": np.array(list(sample.natural(tokens).values())),
        "uniform": np.full(len(names), 1 / len(names)),
        "best_proxy": W[int(np.argmin(y))],
    }
    mixtures, left_out = {}, {}
    for role, w in fixed.items():
        if budget.feasible(w[None, :])[0]:
            mixtures[role] = dict(zip(names, map(float, w), strict=True))
        else:
            need = sample.epochs_needed(w, budget.windows, budget.rows)
            worst = int(np.argmax(need / budget.max_epochs))
            left_out[role] = (
                f"needs {need[worst]:.2f} epochs of source '{names[worst]}' "
                f"(max_epochs {budget.max_epochs[worst]:g})"
            )
    confirm = confirmations(grid, mixtures)
    execute([r for _, r in confirm])
    rows = []
    for role, spec in confirm:
        w = np.array([mixtures[role][s] for s in names])
        rows.append({
            "role": role, "run": spec.name, "seed": spec.seed, "weights": mixtures[role],
            "predicted": float(model.predict(w[None, :])[0]),
            "actual": target_of(grid, runs_dir, spec.name),
        })  # fmt: skip
    gains = {}
    for other in ("natural", "uniform"):
        if other in mixtures and "predicted" in mixtures:
            diffs = [
                a["actual"] - b["actual"]
                for a in rows if a["role"] == other
                for b in rows if b["role"] == "predicted" and b["seed"] == a["seed"]
            ]  # fmt: skip
            gains[other] = _interval(diffs)  # > 0: the predicted mixture's target is lower
    return {
        "proxies": [
            {
                "run": p.name,
                "weights": dict(zip(names, map(float, w), strict=True)),
                "actual": float(t),
                "cv_predicted": float(c),
            }
            for p, w, t, c in zip(proxies, W, y, pred_cv, strict=True)
        ],
        "regression": {
            "kind": cfg.regression,
            "cv_folds": min(cfg.cv_folds, len(y)),
            "spearman_cv": rho,
            "searched": scored,
            "top_k": cfg.top_k,
            "predicted_best": best_pred,
        },
        "mixtures": mixtures,
        "left_out": left_out,
        "confirmations": rows,
        "by_role": _by_role(rows, mixtures),
        "gain_vs": gains,
    }


def _left_out_mixtures(grid: MixGrid) -> dict[str, dict[str, float]]:
    """``all``: the base weights; ``no-<source>``: the same with that source's weight 0."""
    base = {s.name: s.weight for s in grid.base.data.sources}
    return {"all": base, **{f"no-{n}": {**base, n: 0.0} for n in grid.sources}}


def _leave_one_out(
    grid: MixGrid, runs_dir: Path, tokens: dict[str, int], execute: Execute
) -> dict[str, Any]:
    mixtures = _left_out_mixtures(grid)
    confirm = confirmations(grid, mixtures)
    execute([r for _, r in confirm])
    rows = [
        {"role": role, "run": spec.name, "seed": spec.seed, "weights": mixtures[role],
         "actual": target_of(grid, runs_dir, spec.name),
         "by_source": _by_source(runs_dir, spec.name, grid.config.target.metric)}
        for role, spec in confirm
    ]  # fmt: skip
    return {"mixtures": mixtures, "confirmations": rows, "by_role": _by_role(rows, mixtures)}


def _by_role(rows: list[dict[str, Any]], roles: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each role's mean target over its confirmation runs that have one, with a 95% interval."""
    return {
        role: _interval(
            [r["actual"] for r in rows if r["role"] == role and r["actual"] is not None]
        )
        for role in roles
    }


def _by_source(runs_dir: Path, name: str, metric: str) -> dict[str, float | None]:
    path = runs_dir / name / "eval.json"
    if not path.is_file():
        return {}
    found = json.loads(path.read_text()).get("heldout_by_source") or {}
    return {s: (v or {}).get(metric) for s, v in found.items()}


def plan(grid_path: str | Path, runs_dir: str | Path = "runs") -> list[dict[str, Any]]:
    """The runs the grid will make, for ``--dry-run``: name, kind and weights where known.

    Proxy weights are drawn around the natural distribution, known once the shared data
    stage has run; the predicted mixture is known only after the proxies.
    """
    grid = load_mix_grid(grid_path)
    cfg, runs_dir = grid.config, Path(runs_dir)
    out: list[dict[str, Any]] = [{"run": f"{cfg.name}-data", "kind": "data", "weights": None}]
    tokens = train_tokens(grid, runs_dir)
    if cfg.mode == "leave_one_out":
        for role, w in _left_out_mixtures(grid).items():
            for seed in cfg.confirm_seeds:
                out.append({"run": f"{cfg.name}-{role}-s{seed}", "kind": "confirm", "weights": w})
        return out
    if tokens is None:
        out += [{"run": f"{cfg.name}-proxy-{i:03d}", "kind": "proxy", "weights": None}
                for i in range(cfg.proxies)]  # fmt: skip
    else:
        runs, W = proxy_runs(grid, tokens)
        out += [{"run": r.name, "kind": "proxy", "weights": dict(zip(grid.sources, map(float, w),
                 strict=True))} for r, w in zip(runs, W, strict=True)]  # fmt: skip
    for role in ROLES:
        for seed in cfg.confirm_seeds:
            out.append({"run": f"{cfg.name}-{role}-s{seed}", "kind": "confirm", "weights": None})
    return out
