"""The eval stage end to end on a tiny run: held-out, probes, HLE, contamination, eval.json."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from superlab.common import RunDir, StageError
from superlab.config import Recipe
from superlab.config.recipe import ProbeSpec
from superlab.data.probes import make_items
from superlab.eval import stage
from superlab.eval.compare import IncomparableError, compare, load_result

from .helpers import english, tiny_model, tokenizer, write_checkpoint, write_shards

HLE_ROWS = [
    {"id": "q1", "question": "Which is north?\nA. the city\nB. the river", "answer": "A",
     "answer_type": "multipleChoice", "category": "Geo"},
    {"id": "q2", "question": english("q2", 20), "answer": "north war",
     "answer_type": "exactMatch", "category": "History"},
]  # fmt: skip


def recipe_dict(tmp_path, **eval_over) -> dict:
    hle = tmp_path / "hle.jsonl"
    hle.write_text("".join(json.dumps(r) + "\n" for r in HLE_ROWS))
    ev = {
        "batches": 2,
        "probes": {"items": 6, "pairs": 6, "kinds": ["recall", "multihop", "passkey"],
                   "passkey_filler": 2, "chunk_sizes": [16], "seed": 0},
        "hle": {"path": str(hle), "max_new_tokens": 4},
        "contamination": {"ngram": 8},
        **eval_over,
    }  # fmt: skip
    return {
        "name": "r",
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 128,
                  "attention": {"kind": "chunked", "chunk_size": 32}},
        "train": {"seq_len": 64},
        "eval": ev,
    }  # fmt: skip


@pytest.fixture
def run(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "runs" / "r")
    tok = tokenizer(tmp_path / "tok.json")
    run.tokenizer_dir.mkdir(parents=True)
    shutil.copy(tmp_path / "tok.json", run.tokenizer)
    # Plant two probe items (seed 0, as the eval makes them) and one HLE question in train.
    planted = make_items("recall", ProbeSpec(pairs=6), 0, 2)
    train = [english(i, 80) for i in range(20)] + [it.prompt + it.answer for it in planted]
    train.append(f"{HLE_ROWS[1]['question']} {HLE_ROWS[1]['answer']}")
    write_shards(run, tok, train, [english("h", 200)])
    cfg = Recipe.model_validate(recipe_dict(tmp_path)).model
    write_checkpoint(
        run, tiny_model(tok.get_vocab_size(), **cfg.model_dump(exclude={"vocab_size"})), 5
    )
    return run


def test_eval_stage_writes_every_section(tmp_path, run):
    recipe = Recipe.model_validate(recipe_dict(tmp_path))
    run.recipe.write_text(yaml.safe_dump(recipe.resolved()))
    summary = stage.run(stage.eval_context(recipe, tmp_path / "runs"))
    result = json.loads(run.eval.read_text())
    assert result["step"] == 5 and len(result["weights_sha256"]) == 64
    assert set(result["settings"]) == {"heldout", "probes", "hle", "contamination"}
    probes = result["probes"]
    assert probes["chunk_sizes"] == [16, 32]  # configured, and the model's own
    for kind in ("recall", "multihop", "passkey"):
        s = probes["kinds"][kind]
        assert s["n"] == 6 and s["skipped"] == {}
        assert set(s["by_chunk"]["32"]) >= {"same", "adjacent", "far", "straddle", "context_fault"}
    assert probes["kinds"]["passkey"]["chance"] == 1e-5
    assert set(probes["kinds"]["passkey"]["by_depth"]) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    settings = result["settings"]["probes"]
    assert settings["decoding"]["method"] == "greedy" and settings["prompt_format"]
    assert settings["chunk_sizes"] == [16]  # configured; the model's own 32 is a model fact
    assert "file_sha256" in result["settings"]["hle"] and "file" not in result["settings"]["hle"]
    assert len(result["contamination"]["train_sha256"]) == 64
    assert result["hle"]["n"] == 2 and set(result["hle"]["by_category"]) == {"Geo", "History"}
    assert result["settings"]["hle"]["decoding"]["max_new_tokens"] == 4
    c = result["contamination"]
    assert c["probes"]["contaminated"] == 2 and c["hle"]["contaminated"] == 1
    assert c["probes"]["items"] == 18
    rows = [json.loads(x) for x in (run.root / "eval" / "contamination.jsonl").open()]
    flagged = {r["id"] for r in rows if r["contaminated"]}
    assert flagged == {"recall-0-0", "recall-0-1", "q2"}
    assert all(isinstance(r["min_k"], float) for r in rows)
    probe_rows = [json.loads(x) for x in (run.root / "eval" / "probes.jsonl").open()]
    assert len(probe_rows) == 18 and {"query", "needed", "relation"} <= set(probe_rows[0])
    assert summary["recall_accuracy"] == probes["kinds"]["recall"]["accuracy"]
    assert summary["probes_contaminated"] == 2


def test_eval_context_refuses_a_recipe_changed_outside_eval(tmp_path, run):
    recipe = Recipe.model_validate(recipe_dict(tmp_path))
    run.recipe.write_text(yaml.safe_dump(recipe.resolved()))
    other_eval = Recipe.model_validate(recipe_dict(tmp_path, batches=1))
    assert stage.eval_context(other_eval, tmp_path / "runs").recipe.eval.batches == 1
    changed = recipe_dict(tmp_path)
    changed["train"]["seq_len"] = 32
    with pytest.raises(StageError, match=r"train.seq_len: 64 -> 32"):
        stage.eval_context(Recipe.model_validate(changed), tmp_path / "runs")
    # How the data stage ran (executor, workers) never blocks evaluating its run.
    fewer_workers = recipe_dict(tmp_path)
    fewer_workers["data"] = {"workers": recipe.data.workers + 3}
    assert stage.eval_context(Recipe.model_validate(fewer_workers), tmp_path / "runs")
    with pytest.raises(StageError, match="no run here"):
        stage.eval_context(recipe, tmp_path / "elsewhere")


def test_results_with_other_settings_are_not_compared(tmp_path, run):
    recipe = Recipe.model_validate(recipe_dict(tmp_path, hle=None, contamination=None))
    run.recipe.write_text(yaml.safe_dump(recipe.resolved()))
    stage.run(stage.eval_context(recipe, tmp_path / "runs"))
    a = load_result(run.root)
    shutil.copy(run.eval, tmp_path / "a.json")
    table = compare([a, load_result(tmp_path / "a.json")], ["a", "b"])
    labels = [label for label, _ in table.rows]
    assert "recall context fault (C=32)" in labels and "held-out loss" in labels
    assert all(v[0] == v[1] for _, v in table.rows)

    d = recipe_dict(tmp_path, hle=None, contamination=None)
    d["eval"]["probes"]["seed"] = 1
    stage.run(stage.eval_context(Recipe.model_validate(d), tmp_path / "runs"))
    with pytest.raises(IncomparableError, match=r"probes\.seed: 0 vs 1 \(a vs b\)"):
        compare([a, load_result(run.root)], ["a", "b"])


def test_cli_eval_then_compare_refuses_other_settings(tmp_path, run):
    from typer.testing import CliRunner

    from superlab.cli import app

    d = recipe_dict(tmp_path, hle=None, contamination=None)
    run.recipe.write_text(yaml.safe_dump(Recipe.model_validate(d).resolved()))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(d))
    cli = CliRunner()
    res = cli.invoke(app, ["eval", str(path), "--runs-dir", str(tmp_path / "runs"), "-q"])
    assert res.exit_code == 0, res.output
    assert "recall_accuracy" in res.output and "eval.json" in res.output
    shutil.copy(run.eval, tmp_path / "first.json")
    res = cli.invoke(
        app,
        ["eval", str(path), "--runs-dir", str(tmp_path / "runs"), "-q", "--set", "eval.batches=1"],
    )
    assert res.exit_code == 0, res.output
    res = cli.invoke(app, ["compare", str(tmp_path / "first.json"), str(run.root)])
    assert res.exit_code == 2
    assert "heldout.batches: 2 vs 1" in " ".join(res.output.split())
    res = cli.invoke(app, ["compare", str(tmp_path / "first.json"), str(tmp_path / "first.json")])
    assert res.exit_code == 0 and "context fault" in res.output
    res = cli.invoke(app, ["eval", str(path), "--runs-dir", str(tmp_path / "none"), "-q"])
    assert res.exit_code == 1 and "no run here" in res.output
