"""``data.probes``: the data stage adds probe documents to the train split, never to held-out."""

from __future__ import annotations

import json

import pytest

from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.config.recipe import ProbeMixConfig
from superlab.data import stage
from superlab.data.probes import TrainOnly, probe_documents
from superlab.data.split import HeldoutSplit
from superlab.data.tokenizer import load_tokenizer

from .helpers import english, shard_texts


def recipe(tmp_path, probes: dict | None) -> Recipe:
    src = tmp_path / "web.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": english(i)}) + "\n" for i in range(40))
    )
    data = {
        "source": {"kind": "jsonl", "paths": [str(src)]},
        "heldout_fraction": 0.2,
        "workers": 1,
        "language": {"enabled": False},
        "dedup": {"minhash": {"enabled": False}},
    }
    if probes is not None:
        data["probes"] = probes
    return Recipe.model_validate({"name": "t", "data": data, "tokenizer": {"vocab_size": 300}})


def test_data_stage_mixes_probe_documents_into_train_only(tmp_path):
    probes = {"docs": 5, "kinds": ["recall", "multihop"], "pairs": 6, "seed": 11}
    r = recipe(tmp_path, probes)
    run = RunDir(tmp_path / "run")
    summary = stage.run(StageContext(recipe=r, run=run))
    tok = load_tokenizer(run.tokenizer)
    train, heldout = shard_texts(run, tok, "train"), shard_texts(run, tok, "heldout")
    want = [d.text for d in probe_documents(ProbeMixConfig(**probes))]
    assert len(want) == 10
    assert all(t in train for t in want)
    assert not any(t in heldout for t in want) and len(heldout) > 0
    assert summary["train_tokens"] > 0
    stats = json.loads(run.data_stats.read_text())
    assert stats["steps"]["pack"]["probe_docs"] == 10
    assert stats["steps"]["pack"]["docs"]["train"] == stats["docs_out"] - len(heldout) + 10


def test_without_probes_nothing_is_added_and_the_tokenizer_never_saw_them(tmp_path):
    probes = {"docs": 30, "kinds": ["recall"], "pairs": 6, "seed": 11}
    runs = {}
    for name, cfg in (("with", probes), ("without", None)):
        runs[name] = RunDir(tmp_path / name)
        stage.run(StageContext(recipe=recipe(tmp_path, cfg), run=runs[name]))
    stats = json.loads(runs["without"].data_stats.read_text())
    pack = stats["steps"]["pack"]
    assert pack["probe_docs"] == 0
    assert pack["docs"]["train"] + pack["docs"]["heldout"] == stats["docs_out"]
    texts = [d.text for d in probe_documents(ProbeMixConfig(**probes))]
    count = {
        name: sum(len(load_tokenizer(r.tokenizer).encode(t).ids) for t in texts)
        for name, r in runs.items()
    }
    assert count["with"] < 0.95 * count["without"]  # some merges were learnt on probe text


def test_train_only_split_keeps_probes_out_of_heldout():
    everything = HeldoutSplit(0.999)  # every ordinary id goes to held-out
    split = TrainOnly(everything)
    assert split.split_of("probe-recall-1-0") == "train"
    assert split.split_of("web-7") == "heldout"


def test_eval_and_mix_seeds_must_differ():
    with pytest.raises(ValueError, match=r"eval.probes.seed \(4\) equals data.probes.seed"):
        Recipe.model_validate(
            {
                "name": "t",
                "data": {"probes": {"docs": 1, "seed": 4}},
                "eval": {"probes": {"seed": 4}},
            }
        )
