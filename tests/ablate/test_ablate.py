"""``superlab ablate``: grid expansion, budget checks, a tiny grid run twice (resumed)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.eval.helpers import english

from superlab.ablate.grid import GridError, expand, matmul_flops, tokens_per_run
from superlab.ablate.run import ablate
from superlab.ablate.table import summarize, t975

REPO = Path(__file__).resolve().parents[2]


def base(tmp_path: Path) -> dict:
    src = tmp_path / "web.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": english(i, 80)}) + "\n" for i in range(30))
    )
    return {
        "name": "base",
        "data": {"source": {"kind": "jsonl", "paths": [str(src)]}, "heldout_fraction": 0.2,
                 "workers": 1, "language": {"enabled": False},
                 "dedup": {"minhash": {"enabled": False}},
                 "probes": {"docs": 4, "pairs": 4, "seed": 1}},
        "tokenizer": {"vocab_size": 300},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "max_seq_len": 64,
                  "moe": {"num_experts": 2, "top_k": 1, "every": 1, "expert_hidden": 32}},
        "train": {"steps": 2, "batch_size": 2, "seq_len": 32, "warmup_steps": 0, "log_every": 1,
                  "eval_every": 2, "ckpt_every": 2, "device": "cpu", "threads": 1},
        "eval": {"batches": 1, "probes": {"items": 3, "pairs": 4, "chunk_sizes": [8],
                                          "kinds": ["recall"], "seed": 0}},
    }  # fmt: skip


def grid(tmp_path: Path, **over) -> Path:
    g = {
        "name": "g",
        "base": base(tmp_path),
        "seeds": [0, 1],
        "axes": {
            "attention": {
                "full": {"model.attention.kind": "full"},
                "chunked": {"model.attention.kind": "chunked", "model.attention.chunk_size": 8},
            },
            "router": {"token_choice": {"model.moe.router": "token_choice"}},
        },
        "dense_baseline": "router",
        **over,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(g, sort_keys=False))
    return path


def test_expansion_crosses_axes_adds_dense_baselines_and_keeps_the_budget(tmp_path):
    _, runs = expand(grid(tmp_path))
    assert [r.name for r in runs] == [
        "g-full-token_choice-s0", "g-full-token_choice-s1",
        "g-chunked-token_choice-s0", "g-chunked-token_choice-s1",
        "g-full-dense-s0", "g-full-dense-s1",
        "g-chunked-dense-s0", "g-chunked-dense-s1",
    ]  # fmt: skip
    dense = runs[-1].recipe
    assert dense.model.moe is None and dense.model.ffn_hidden == 32
    assert dense.model.attention.kind == "chunked" and dense.train.seed == 1 and dense.seed == 1
    assert len({tokens_per_run(r.recipe) for r in runs}) == 1
    flops = [matmul_flops(r.recipe) for r in runs]
    assert max(flops) / min(flops) < 1.02


def test_budget_and_shared_data_are_enforced(tmp_path):
    axes = {"size": {"small": {"model.d_model": 16}, "big": {"model.d_model": 32}}}
    with pytest.raises(GridError, match=r"g-big-s0 has .* active matmul FLOPs per token"):
        expand(grid(tmp_path, axes=axes, dense_baseline=None))
    axes = {"steps": {"a": {"train.steps": 2}, "b": {"train.steps": 3}}}
    with pytest.raises(GridError, match=r"g-b-s0 trains on 192 tokens, g-a-s0 on 128"):
        expand(grid(tmp_path, axes=axes, dense_baseline=None))
    axes = {"data": {"a": {"data.heldout_fraction": 0.1}}}
    with pytest.raises(GridError, match=r"axes.data.a: 'data.heldout_fraction' would change"):
        expand(grid(tmp_path, axes=axes, dense_baseline=None))
    with pytest.raises(GridError, match=r"dense_baseline: 'routers' is not an axis"):
        expand(grid(tmp_path, dense_baseline="routers"))
    bad = {"attention": {"x": {"model.attention.kind": "chunked"}}}  # no chunk_size
    with pytest.raises(GridError, match=r"grid.yaml: x/token_choice|grid.yaml: x"):
        expand(grid(tmp_path, axes=bad, dense_baseline=None))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A tiny grid run once for the module: (grid file, runs dir, result)."""
    tmp_path = tmp_path_factory.mktemp("tiny")
    path = grid(tmp_path)
    runs_dir = tmp_path / "runs"
    return path, runs_dir, ablate(path, runs_dir)


def test_a_tiny_grid_runs_resumes_and_compares(tiny):
    path, runs_dir, result = tiny
    first = runs_dir / "g-full-token_choice-s0"
    later = runs_dir / "g-chunked-dense-s1"
    shard = next((first / "data" / "shards").glob("train-*.bin"))
    same = later / "data" / "shards" / shard.name
    assert same.stat().st_ino == shard.stat().st_ino  # one data stage, hard-linked
    assert json.loads((later / ".done" / "data.json").read_text())["shared_from"] == str(first)
    configs = {c["config"]: c for c in result["configs"]}
    assert list(configs) == [
        "full/token_choice",
        "chunked/token_choice",
        "full/dense",
        "chunked/dense",
    ]
    for c in configs.values():
        assert c["seeds"] == 2 and c["heldout_loss"]["n"] == 2 and c["heldout_loss"]["ci95"] > 0
    assert configs["full/dense"]["load_cv"]["mean"] is None
    assert configs["full/token_choice"]["load_cv"]["mean"] is not None
    rows = {r["name"]: r for r in result["runs"]}
    assert all(r["chunk_size"] == 8 for r in rows.values())
    report = (runs_dir / "g" / "report.html").read_text()
    assert (
        report.count("<svg") == 6  # 3 plots x one panel per attention kind, same scales
        and "training loss: attention = chunked" in report
        and "recall cross-chunk" in report
        and "http" not in report.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    stamp = (first / "metrics.jsonl").stat().st_mtime_ns
    again = ablate(path, runs_dir)  # everything done: nothing retrained
    assert (first / "metrics.jsonl").stat().st_mtime_ns == stamp
    assert again["configs"] == result["configs"]


def test_parallel_jobs_give_the_same_numbers(tiny, tmp_path):
    path, _, serial = tiny
    result = ablate(path, tmp_path / "runs", jobs=2)
    assert result["configs"] == serial["configs"]
    for a, b in zip(result["runs"], serial["runs"], strict=True):
        assert a["name"] == b["name"] and a["final_loss"] == b["final_loss"]
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        ablate(path, tmp_path / "runs", jobs=0)


def test_a_subset_of_seeds_runs_those_runs_only(tiny, tmp_path):
    path, _, serial = tiny
    result = ablate(path, tmp_path / "runs", seeds=[1])
    assert {r["name"][-2:] for r in result["runs"]} == {"s1"}
    want = {r["name"]: r["final_loss"] for r in serial["runs"] if r["name"].endswith("s1")}
    assert {r["name"]: r["final_loss"] for r in result["runs"]} == want
    assert not (tmp_path / "runs" / "g-full-token_choice-s0").exists()
    with pytest.raises(GridError, match=r"seeds \[5\] are not among the grid's seeds \[0, 1\]"):
        ablate(path, tmp_path / "runs", seeds=[5])


def test_an_interrupted_parallel_ablation_stops_its_runs_and_starts_no_other(tmp_path):
    g = yaml.safe_load(grid(tmp_path).read_text())
    g["base"]["train"].update({"steps": 3000, "log_every": 10, "ckpt_every": 5000})
    g["jobs"] = 2
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(g, sort_keys=False))
    runs_dir = tmp_path / "runs"
    cmd = [sys.executable, "-m", "superlab", "ablate", str(path), "--runs-dir", str(runs_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = runs_dir / "g-full-token_choice-s0" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (first.exists() and first.read_text().count("\n") >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # the parent only: it must stop its workers
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    started = [d.name for d in runs_dir.iterdir() if (d / "metrics.jsonl").exists()]
    assert len(started) <= 2  # the two under way; none started after the signal
    for name in started:
        assert not (runs_dir / name / ".done" / "train.json").exists()
    # The run seen training saved a checkpoint on the way out (the other may have been
    # stopped before its trainer began, with nothing to save).
    ckpts = [int(c.name.split("-")[1]) for c in first.parent.joinpath("ckpt").glob("step-*")]
    assert ckpts and max(ckpts) < 3000
    time.sleep(1)
    assert all(
        not (d / "metrics.jsonl").exists() for d in runs_dir.iterdir() if d.name not in started
    )  # no orphan worker went on to start another run


def test_the_ablation_report_renders_in_chromium(tiny, open_in_browser):
    _, runs_dir, result = tiny
    seen = open_in_browser(runs_dir / "g" / "report.html")
    assert seen["errors"] == [] and seen["requests"] == []
    # loss curves, load balance, recall by distance; a panel per attention kind each
    assert len(seen["charts"]) == 6
    for chart in seen["charts"]:
        _, _, width, height = chart["box"]
        assert width >= 400 and height >= 150 and chart["painted"] > 0.01, chart
    for config in result["configs"]:
        assert config["config"] in seen["text"]  # every configuration in the table


def test_t_interval():
    assert t975(1) == 12.706 and t975(12) == 2.228 and t975(100) == 1.96
    rows = [
        {"config": "a", "values": {}, "complete": True, "final_loss": x} for x in (1.0, 2.0, 3.0)
    ]
    s = summarize(rows)[0]["final_loss"]
    assert s["mean"] == 2.0 and s["ci95"] == pytest.approx(4.303 * 1.0 / 3**0.5)


def test_the_shipped_grids_expand(tmp_path):
    _, runs = expand(REPO / "recipes" / "ablate-llama4.yaml")
    configs = {r.config for r in runs}
    for attn in ("full", "sliding", "chunked", "chunked_global", "sparse"):
        for router in ("token_choice", "aux_free", "expert_choice", "dense"):
            assert f"{attn}/{router}" in configs
    assert len(runs) == 40
    dense = {
        (r.values["attention"], r.seed): r.recipe for r in runs if r.values["router"] == "dense"
    }
    _, attention = expand(REPO / "recipes" / "ablate-attention.yaml")
    for r in attention:  # the small grid's runs are the big grid's dense baselines
        big = dense[r.values["attention"], r.seed].resolved()
        assert {**r.recipe.resolved(), "name": ""} == {**big, "name": ""}
