from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from superlab.common import StageContext, StageError
from superlab.data import stage
from superlab.data.pipeline import shards as shard_steps
from superlab.data.stage import run
from superlab.data.tokenizer import load_tokenizer

from .helpers import english, make_ctx, write_jsonl

STEPS = ("clean", "dedup", "tokenizer", "pack")


def corpus(tmp_path: Path) -> list[Path]:
    """50 documents in two files: 40 good ones, 3 duplicates and 7 planted cases."""
    web = [{"id": f"g{i}", "text": english(i)} for i in range(40)]
    web += [
        {"id": "dup1", "text": english(1)},
        {"id": "dup2", "text": english(2).upper()},
        {"id": "dup3", "text": english(1).replace(" ", "  ")},
        {"id": "short", "text": "A short but perfectly fine sentence."},
        {"id": "spam", "text": "\n".join(["Buy cheap watches online today and save."] * 12)},
        {"id": "foreign", "text": english(100, stop_rate=0.0)},
        {"id": "lorem", "text": english(101) + "\nLorem ipsum dolor sit amet, consectetur."},
    ]
    more = [
        {"id": "code", "text": "def f(x):\n    return {x: 1}\nprint(f(2))"},
        {"id": "boiler", "text": english(102) + "\nThis site uses cookies.\nShare on Facebook"},
        {"text": english(103)},  # no id: "more:3"
    ]
    gz = tmp_path / "src" / "more.jsonl.gz"
    gz.parent.mkdir(parents=True, exist_ok=True)
    gz.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in more).encode()))
    return [write_jsonl(tmp_path / "src" / "web.jsonl", web), gz]


@pytest.fixture
def ctx(tmp_path: Path) -> StageContext:
    # One worker: the shards run in this process, where monkeypatches reach them. Language
    # id is off: the test pages are made-up words.
    return make_ctx(
        tmp_path,
        corpus(tmp_path),
        heldout_fraction=0.1,
        shard_tokens=2048,
        workers=1,
        language={"enabled": False},
    )


def marker(ctx: StageContext, step: str) -> Path:
    return ctx.run.data_work / f"{step}.done.json"


def outputs(ctx: StageContext) -> dict[str, Path]:
    r = ctx.run
    return {
        "work_clean": r.data_work / "filtered" / "00000.jsonl",
        "clean": r.data / "clean.jsonl",
        "rejects": r.data / "rejects.jsonl",
        "tokenizer": r.tokenizer,
        "index": r.shards / "index.json",
        **{f"marker:{s}": marker(ctx, s) for s in STEPS},
    }


def identity(paths: dict[str, Path]) -> dict[str, tuple[int, int]]:
    """(inode, mtime) per path: a rewrite (temp + rename) changes the inode."""
    return {k: (p.stat().st_ino, p.stat().st_mtime_ns) for k, p in paths.items()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_removal_is_counted_with_its_reason(ctx: StageContext) -> None:
    summary = run(ctx)
    removed = {
        "dedup:exact": 3,
        "c4:empty": 1,
        "c4:lorem_ipsum": 1,
        "gopher:dup_line_frac": 1,
        "gopher:min_words": 1,
        "gopher:stop_words": 1,
    }
    assert summary["docs_in"] == 50 and summary["docs_out"] == 42
    stats = json.loads(ctx.run.data_stats.read_text())
    assert stats["removed"] == removed
    assert stats["lines_removed"] == {"c4:no_terminal_punct": 4, "c4:policy": 1}
    steps = stats["steps"]
    funnel = [(name, s["docs_in"], s["docs_out"]) for name, s in steps.items() if "docs_in" in s]
    assert funnel == [
        ("read", 50, 50),
        ("C4LineFilter", 50, 48),
        ("LengthFilter", 48, 47),
        ("GopherQualityFilter", 47, 46),
        ("GopherRepetitionFilter", 46, 45),
        ("FineWebQualityFilter", 45, 45),
        ("PIIFilter", 45, 45),
        ("ExactDedup", 45, 42),
        ("MinHashDedup", 42, 42),
    ]
    assert steps["C4LineFilter"]["bytes_out"] < steps["C4LineFilter"]["bytes_in"]
    assert set(stats["seconds"]) == set(STEPS)

    rejects = read_jsonl(ctx.run.data / "rejects.jsonl")
    assert Counter(r["reason"] for r in rejects) == removed
    by_id = {r["id"]: r for r in rejects}
    assert {i: by_id[i]["reason"] for i in ("short", "spam", "foreign", "lorem", "code")} == {
        "short": "gopher:min_words",
        "spam": "gopher:dup_line_frac",
        "foreign": "gopher:stop_words",
        "lorem": "c4:lorem_ipsum",
        "code": "c4:empty",
    }
    assert {i: by_id[i]["dup_of"] for i in ("dup1", "dup2", "dup3")} == {
        "dup1": "g1",
        "dup2": "g2",
        "dup3": "g1",
    }
    assert by_id["code"] == {
        "step": "C4LineFilter",
        "reason": "c4:empty",
        "id": "code",
        "source": str(ctx.recipe.data.source.paths[1]),
        "offset": 1,
    }
    assert by_id["dup1"]["step"] == "ExactDedup"

    clean = read_jsonl(ctx.run.data / "clean.jsonl")
    assert [d["id"] for d in clean] == [f"g{i}" for i in range(40)] + ["boiler", "more:3"]
    boiler = next(d for d in clean if d["id"] == "boiler")
    assert boiler["text"] == english(102)  # its cookie and share lines were removed

    index = json.loads((ctx.run.shards / "index.json").read_text())
    tokens = {s: sum(sh["tokens"] for sh in shards) for s, shards in index["splits"].items()}
    docs = {s: sum(sh["docs"] for sh in shards) for s, shards in index["splits"].items()}
    assert stats["tokens"] == tokens
    assert (summary["train_tokens"], summary["heldout_tokens"]) == (
        tokens["train"],
        tokens["heldout"],
    )
    assert docs == {"train": 38, "heldout": 4}  # pinned: xxh3-64 of the ids vs 0.1
    assert load_tokenizer(ctx.run.tokenizer).get_vocab_size() == 300 == summary["vocab_size"]


def test_rerun_redoes_only_the_missing_substep(ctx: StageContext) -> None:
    run(ctx)
    paths = outputs(ctx)
    before = identity(paths)
    index_before = paths["index"].read_text()

    marker(ctx, "pack").unlink()
    shutil.rmtree(ctx.run.shards)
    run(ctx)
    after = identity(paths)
    changed = {k for k in paths if after[k] != before[k]}
    assert changed == {"index", "marker:pack"}
    assert paths["index"].read_text() == index_before  # deterministic

    # A missing marker redoes its step and every later one (their inputs may differ).
    marker(ctx, "tokenizer").unlink()
    run(ctx)
    again = identity(paths)
    changed = {k for k in paths if again[k] != after[k]}
    assert changed == {"tokenizer", "index", "marker:tokenizer", "marker:pack"}
    assert paths["index"].read_text() == index_before

    # A missing output with its marker present also redoes the step (and the later ones).
    paths["clean"].unlink()
    run(ctx)
    last = identity(paths)
    assert {k for k in paths if last[k] == again[k]} == {"work_clean", "marker:clean"}
    assert paths["index"].read_text() == index_before


def test_interrupted_substep_leaves_no_half_output(
    ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_train = stage.train_tokenizer

    def interrupted(texts, cfg, path):  # type: ignore[no-untyped-def]
        for _ in range(5):
            next(texts)
        raise KeyboardInterrupt

    monkeypatch.setattr(stage, "train_tokenizer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(ctx)
    assert [s for s in STEPS if marker(ctx, s).exists()] == ["clean", "dedup"]
    assert not ctx.run.tokenizer_dir.exists() or not any(ctx.run.tokenizer_dir.iterdir())
    assert not ctx.run.shards.exists()

    paths = outputs(ctx)
    earlier = {k: paths[k] for k in ("work_clean", "clean", "rejects")}
    before = identity(earlier)
    monkeypatch.setattr(stage, "train_tokenizer", real_train)
    run(ctx)
    assert identity(earlier) == before
    assert all(marker(ctx, s).exists() for s in STEPS)


def test_interrupted_clean_discards_its_temporaries(
    ctx: StageContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Boom:
        seen = 0

        def keep(self, doc):  # type: ignore[no-untyped-def]
            Boom.seen += 1
            if Boom.seen == 10:
                raise KeyboardInterrupt
            return True

    real = shard_steps.build_filters
    monkeypatch.setattr(shard_steps, "build_filters", lambda *cfg: [Boom(), *real(*cfg)])
    with pytest.raises(KeyboardInterrupt):
        run(ctx)
    left = sorted(str(p.relative_to(ctx.run.data_work)) for p in ctx.run.data_work.rglob("*"))
    assert left == ["filtered", "manifest.json"]
    # A temporary left by a killed process (no chance to clean up) is discarded on rerun.
    stale = ctx.run.data_work / "filtered" / ".00000.jsonl.abc123.tmp"
    stale.write_text('{"half": ')
    (ctx.run.data / ".shards.xyz.tmp").mkdir()
    monkeypatch.undo()
    run(ctx)
    assert not stale.exists() and not (ctx.run.data / ".shards.xyz.tmp").exists()
    assert json.loads(ctx.run.data_stats.read_text())["docs_out"] == 42


def test_nothing_left_is_a_stage_error(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "tiny.jsonl", [{"text": "Too short."}, {"text": "Menu"}])
    ctx = make_ctx(tmp_path, [src], language={"enabled": False})
    with pytest.raises(StageError, match=r"no documents left .*{'c4:empty': 2}"):
        run(ctx)
    assert not (ctx.run.data / "clean.jsonl").exists()
    assert [p.name for p in ctx.run.data_work.glob("*.done.json")] == ["clean.done.json"]


def test_bad_input_line_is_rejected_and_the_run_goes_on(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"text": english(1)}) + "\n{not json\n")
    ctx = make_ctx(tmp_path, [src], language={"enabled": False})
    assert run(ctx)["docs_out"] == 1
    (bad,) = read_jsonl(ctx.run.data / "rejects.jsonl")
    assert (bad["step"], bad["reason"], bad["source"], bad["offset"]) == (
        "read",
        "read:invalid_json",
        str(src),
        2,
    )


def test_shards_hold_the_clean_corpus(ctx: StageContext) -> None:
    run(ctx)
    index = json.loads((ctx.run.shards / "index.json").read_text())
    tok = load_tokenizer(ctx.run.tokenizer)
    texts = {d["id"]: d["text"] for d in read_jsonl(ctx.run.data / "clean.jsonl")}
    decoded = []
    for shards in index["splits"].values():
        for sh in shards:
            ids = np.memmap(ctx.run.shards / sh["file"], dtype=index["dtype"], mode="r")
            assert ids[-1] == index["eos_id"]
            ends = np.flatnonzero(ids == index["eos_id"])
            assert np.array_equal(np.load(ctx.run.shards / sh["docs_file"])[1:], ends[:-1] + 1)
            starts = [0, *(ends[:-1] + 1)]
            decoded += [tok.decode(ids[s:e].tolist()) for s, e in zip(starts, ends, strict=True)]
    assert sorted(decoded) == sorted(texts.values())
