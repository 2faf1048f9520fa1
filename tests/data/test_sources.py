"""A mixture through the data stage: per-source accounting, cross-source dedup, tagged shards."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from superlab.common import RunDir, StageContext
from superlab.config import Recipe
from superlab.data import sources
from superlab.data.stage import run

from .helpers import english, write_jsonl


def mixture_ctx(tmp_path: Path, **over) -> StageContext:
    """web (listed first) and forum, sharing one exact and one near duplicate; forum's
    thresholds overridden so that its short posts pass."""
    web = [{"id": f"w{i}", "text": english(i)} for i in range(30)]
    web.append({"id": "w-short", "text": "A short but perfectly fine sentence."})
    forum = [{"id": f"f{i}", "text": english(1000 + i, paragraphs=1)} for i in range(20)]
    forum.append({"id": "copy", "text": english(3)})  # exact copy of web's w3
    near = english(5).split(" ")
    near[7] = "changed"
    forum.append({"id": "near", "text": " ".join(near)})  # near copy of web's w5
    forum.append({"id": "f-short", "text": "A short but perfectly fine sentence."})
    paths = {"web": write_jsonl(tmp_path / "src" / "web.jsonl", web),
             "forum": write_jsonl(tmp_path / "src" / "forum.jsonl", forum)}  # fmt: skip
    data = {
        "sources": [
            {"name": "web", "kind": "jsonl", "paths": [str(paths["web"])], "weight": 3},
            {"name": "forum", "kind": "jsonl", "paths": [str(paths["forum"])], "weight": 1,
             "filters": {"min_words": 5}},
        ],
        "heldout_fraction": 0.1, "shard_tokens": 2048, "workers": 1,
        "language": {"enabled": False},
        "dedup": {"minhash": {"verify": True, "verify_threshold": 0.5}},
        **over,
    }  # fmt: skip
    recipe = Recipe.model_validate({"name": "m", "data": data, "tokenizer": {"vocab_size": 300}})
    return StageContext(recipe=recipe, run=RunDir(tmp_path / "run"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[StageContext, dict]:
    ctx = mixture_ctx(tmp_path_factory.mktemp("mix"))
    run(ctx)
    return ctx, json.loads(ctx.run.data_stats.read_text())


def test_per_source_accounting_adds_up(mixed):
    _, stats = mixed
    per = stats["sources"]
    assert list(per) == ["web", "forum"]
    for name, s in per.items():
        assert s["docs_in"] == s["docs_out"] + sum(s["removed"].values()), name
        steps = list(s["steps"].values())
        for a, b in itertools.pairwise(steps):
            assert a["docs_out"] == b["docs_in"], name  # each step takes what the last kept
        for st in steps:
            assert st["docs_in"] == st["docs_out"] + sum(st["removed"].values())
            assert st["tokens_in"] >= st["tokens_out"] >= 0
    assert per["web"]["docs_in"] == 31 and per["forum"]["docs_in"] == 23
    assert per["web"]["removed"] == {"gopher:min_words": 1}  # web keeps its 50-word floor
    assert "gopher:min_words" not in per["forum"]["removed"]  # forum's own floor: 5 words
    assert sum(s["docs_out"] for s in per.values()) == stats["docs_out"]
    assert sum(s["docs_in"] for s in per.values()) == stats["docs_in"]
    for split in ("train", "heldout"):
        assert sum(s["tokens"][split] for s in per.values()) == stats["tokens"][split]
        assert all(s["tokens"]["heldout"] > 0 for s in per.values())  # every source scored
    assert sum(s["natural_share"] for s in per.values()) == pytest.approx(1.0)


def test_dedup_across_sources_keeps_the_source_listed_first(mixed):
    ctx, stats = mixed
    forum = stats["sources"]["forum"]["removed"]
    assert forum["dedup:exact"] == 1  # the copy of w3
    assert forum["dedup:near"] == 1
    assert "dedup:exact" not in stats["sources"]["web"]["removed"]
    rejects = [json.loads(x) for x in (ctx.run.data / "rejects.jsonl").read_text().splitlines()]
    by_id = {r.get("id"): r for r in rejects}
    assert by_id["forum/copy"]["dup_of"] == "web/w3"
    assert by_id["forum/near"]["reason"] == "dedup:near"
    assert by_id["forum/f-short"]["reason"] == "gopher:stop_words"  # forum's own thresholds
    assert all(r["mix_source"] in ("web", "forum") for r in rejects)  # every removal names it
    kept = [json.loads(x) for x in (ctx.run.data / "clean.jsonl").read_text().splitlines()]
    assert {d["metadata"]["mix_source"] for d in kept} == {"web", "forum"}
    assert all(d["id"].startswith(d["metadata"]["mix_source"] + "/") for d in kept)


def test_shards_are_tagged_by_source(mixed):
    ctx, stats = mixed
    index = json.loads((ctx.run.shards / "index.json").read_text())
    assert index["sources"] == ["web", "forum"]
    for entries in index["splits"].values():
        for e in entries:
            assert e["file"].startswith(e["source"] + "/")
            assert (ctx.run.shards / e["file"]).is_file()
    train = dict.fromkeys(index["sources"], 0)
    for e in index["splits"]["train"]:
        train[e["source"]] += e["tokens"]
    assert len(index["splits"]["train"]) > 2  # shard_tokens 2048: web takes several shards
    assert train == {s: v["tokens"]["train"] for s, v in stats["sources"].items()}


def test_weights_are_not_data_settings(tmp_path):
    a = mixture_ctx(tmp_path).recipe.data.model_dump(mode="json")
    other = mixture_ctx(tmp_path).recipe.data.model_copy(deep=True)
    other.sources[0].weight, other.sources[1].max_epochs = 0.1, 9.0
    b = other.model_dump(mode="json")
    assert a != b
    assert sources.without_loader_fields(a) == sources.without_loader_fields(b)


def test_a_single_source_has_no_per_source_section(tmp_path):
    docs = [{"id": f"d{i}", "text": english(i)} for i in range(8)]
    path = write_jsonl(tmp_path / "a.jsonl", docs)
    recipe = Recipe.model_validate({"name": "s", "tokenizer": {"vocab_size": 300},
        "data": {"source": {"kind": "jsonl", "paths": [str(path)]}, "workers": 1,
                 "language": {"enabled": False}, "heldout_fraction": 0.2}})  # fmt: skip
    ctx = StageContext(recipe=recipe, run=RunDir(tmp_path / "run"))
    run(ctx)
    assert "sources" not in json.loads(ctx.run.data_stats.read_text())
    index = json.loads((ctx.run.shards / "index.json").read_text())
    assert "sources" not in index and all("source" not in e for e in index["splits"]["train"])


def test_sources_and_source_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"give data\.source or data\.sources, not both"):
        both = {"source": {"kind": "jsonl", "paths": ["a.jsonl"]}, "sources": [{"name": "a"}]}
        Recipe.model_validate({"name": "x", "data": both})
    with pytest.raises(ValueError, match="source names must be unique"):
        Recipe.model_validate({"name": "x", "data": {"sources": [{"name": "a"}, {"name": "a"}]}})
    with pytest.raises(ValueError, match=r"unknown filters field\(s\) \['min_wrds'\]"):
        Recipe.model_validate({"name": "x", "data": {
            "sources": [{"name": "a", "filters": {"min_wrds": 3}}]}})  # fmt: skip
