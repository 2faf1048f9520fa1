"""``superlab mix``: grid checks, dry run, a tiny RegMix search and a leave-one-out grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.data.helpers import english
from typer.testing import CliRunner

from superlab.ablate.grid import GridError
from superlab.cli import app
from superlab.mix.grid import check_budget, load_mix_grid, run_recipe_for
from superlab.mix.run import mix, plan


def base(tmp_path: Path) -> dict:
    """Three jsonl sources of different styles: prose, terse lists, repetitive prose."""
    paths = {}
    styles = {"prose": 0.3, "terse": 0.05, "chatty": 0.6}
    for name, stop in styles.items():
        recs = [{"id": f"{name}{i}", "text": english(f"{name}{i}", 3, stop)} for i in range(24)]
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        paths[name] = str(path)
    return {
        "name": "base",
        "data": {"sources": [
            {"name": n, "kind": "jsonl", "paths": [p], "weight": 1.0,
             "filters": {"min_stop_words": 0}} for n, p in paths.items()],
                 "heldout_fraction": 0.2, "workers": 1, "language": {"enabled": False},
                 "dedup": {"minhash": {"enabled": False}}},
        "tokenizer": {"vocab_size": 300},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 32},
        "train": {"steps": 3, "batch_size": 4, "seq_len": 16, "warmup_steps": 0,
                  "log_every": 1, "eval_every": 3, "ckpt_every": 3, "device": "cpu",
                  "threads": 1, "tensorboard": False},
        "eval": {"batches": 2},
    }  # fmt: skip


def grid_file(tmp_path: Path, **over) -> Path:
    g = {"name": "m", "base": base(tmp_path), "proxies": 6, "search_samples": 2000,
         "top_k": 20, "confirm_seeds": [0, 1], "cv_folds": 3,
         "confirm": {"train.steps": 4}, **over}  # fmt: skip
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(g, sort_keys=False))
    return path


def test_grid_checks(tmp_path):
    with pytest.raises(GridError, match=r"proxy: 'data.heldout_fraction' would change"):
        load_mix_grid(grid_file(tmp_path, proxy={"data.heldout_fraction": 0.1}))
    with pytest.raises(GridError, match=r"target.sources: 'nope' is not a source"):
        load_mix_grid(grid_file(tmp_path, target={"sources": ["nope"]}))
    one = base(tmp_path)
    one["data"]["sources"] = one["data"]["sources"][:1]
    with pytest.raises(GridError, match=r"needs data\.sources with 2 or more"):
        load_mix_grid(grid_file(tmp_path, base=one))
    grid = load_mix_grid(grid_file(tmp_path))
    a = run_recipe_for(grid, "a", {"prose": 1.0}, 0, "proxy")
    assert [s.weight for s in a.recipe.data.sources] == [1.0, 0.0, 0.0]
    b = run_recipe_for(grid, "b", {"prose": 1.0}, 0, "confirm")
    assert b.recipe.train.steps == 4 and a.recipe.train.steps == 3
    check_budget([a, b], grid.path)  # different kinds may differ
    longer = run_recipe_for(grid, "c", {"prose": 1.0}, 0, "proxy")
    longer.recipe.train.steps = 5
    with pytest.raises(GridError, match=r"c trains on 320 tokens, a on 192"):
        check_budget([a, longer], grid.path)


def test_dry_run_lists_the_runs_before_and_after_the_data_stage(tmp_path):
    path = grid_file(tmp_path)
    runs = plan(path, tmp_path / "runs")
    assert [r["run"] for r in runs][:3] == ["m-data", "m-proxy-000", "m-proxy-001"]
    assert len(runs) == 1 + 6 + 4 * 2 and runs[1]["weights"] is None
    assert runs[-1]["run"] == "m-best_proxy-s1"
    result = CliRunner().invoke(app, ["mix", str(path), "--runs-dir", str(tmp_path / "runs"),
                                      "--dry-run"])  # fmt: skip
    assert result.exit_code == 0 and "m-proxy-005  (proxy; weights drawn later)" in result.stdout
    loo = plan(grid_file(tmp_path, mode="leave_one_out", confirm_seeds=[0]), tmp_path / "runs")
    assert [(r["run"], r["weights"]) for r in loo[1:]] == [
        ("m-all-s0", {"prose": 1.0, "terse": 1.0, "chatty": 1.0}),
        ("m-no-prose-s0", {"prose": 0.0, "terse": 1.0, "chatty": 1.0}),
        ("m-no-terse-s0", {"prose": 1.0, "terse": 0.0, "chatty": 1.0}),
        ("m-no-chatty-s0", {"prose": 1.0, "terse": 1.0, "chatty": 0.0}),
    ]


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, Path, dict]:
    tmp_path = tmp_path_factory.mktemp("search")
    path, runs_dir = grid_file(tmp_path), tmp_path / "runs"
    return path, runs_dir, mix(path, runs_dir)


def test_a_tiny_search_runs_on_one_data_stage_and_reports(searched):
    path, runs_dir, result = searched
    assert len(result["proxies"]) == 6
    weights = np.array([list(p["weights"].values()) for p in result["proxies"]])
    assert np.allclose(weights.sum(1), 1.0) and len({tuple(w) for w in weights}) == 6
    data = runs_dir / "m-data" / "data" / "shards" / "index.json"
    for p in result["proxies"]:
        shared = runs_dir / p["run"] / "data" / "shards" / "index.json"
        assert shared.stat().st_ino == data.stat().st_ino  # one data stage, hard-linked
        ev = json.loads((runs_dir / p["run"] / "eval.json").read_text())
        assert set(ev["heldout_by_source"]) == {"prose", "terse", "chatty"}
        assert p["actual"] == pytest.approx(
            np.mean([v["bits_per_byte"] for v in ev["heldout_by_source"].values()])
        )
        assert ev["mixture"]["prose"]["planned_share"] == pytest.approx(p["weights"]["prose"])
    reg = result["regression"]
    assert -1 <= reg["spearman_cv"] <= 1 and reg["searched"] > 0
    assert set(result["mixtures"]) == {"predicted", "natural", "uniform", "best_proxy"}
    best = min(result["proxies"], key=lambda p: p["actual"])
    assert result["mixtures"]["best_proxy"] == pytest.approx(best["weights"])
    assert sum(result["mixtures"]["predicted"].values()) == pytest.approx(1.0)
    assert len(result["confirmations"]) == 8
    assert all(c["actual"] is not None for c in result["confirmations"])
    for other in ("natural", "uniform"):
        assert result["gain_vs"][other]["n"] == 2
    saved = json.loads((runs_dir / "m" / "mix.json").read_text())
    assert saved["regression"] == result["regression"]
    stamp = (runs_dir / "m-proxy-000" / "metrics.jsonl").stat().st_mtime_ns
    again = mix(path, runs_dir)  # all done: nothing retrained, the same answer
    assert (runs_dir / "m-proxy-000" / "metrics.jsonl").stat().st_mtime_ns == stamp
    assert again["mixtures"] == result["mixtures"]


def test_the_mix_report_renders_in_chromium(searched, open_in_browser):
    _, runs_dir, _ = searched
    seen = open_in_browser(runs_dir / "m" / "report.html")
    assert seen["errors"] == [] and seen["requests"] == []
    assert len(seen["charts"]) == 2  # the proxies' scatter, the weights
    for chart in seen["charts"]:
        _, _, width, height = chart["box"]
        assert width >= 300 and height >= 100 and chart["painted"] > 0.01, chart
    assert "Spearman" in seen["text"] and "best_proxy" in seen["text"]


def test_leave_one_out_runs_one_run_per_source(tmp_path):
    path = grid_file(tmp_path, mode="leave_one_out", confirm_seeds=[0])
    result = mix(path, tmp_path / "runs")
    assert [c["role"] for c in result["confirmations"]] == [
        "all", "no-prose", "no-terse", "no-chatty"
    ]  # fmt: skip
    ev = json.loads((tmp_path / "runs" / "m-no-terse-s0" / "eval.json").read_text())
    assert ev["mixture"]["terse"]["windows"] == 0 and ev["mixture"]["prose"]["windows"] > 0
    assert all(c["actual"] is not None for c in result["confirmations"])
    assert "Leave one source out" in (tmp_path / "runs" / "m" / "report.html").read_text()


def test_the_shipped_mix_recipe_names_five_offline_sources():
    from superlab.config import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "mix.yaml")
    kinds = {s.name: s.kind for s in recipe.data.sources}
    assert kinds == {"web": "wiki_demo", "intl": "wiki_summaries", "code": "python_code",
                     "docs": "python_docs", "chat": "sharegpt"}  # fmt: skip
    assert all(not s.paths for s in recipe.data.sources)  # nothing read from the repository
    assert recipe.data.filters_for("code")[1].enabled is False  # code skips language id
