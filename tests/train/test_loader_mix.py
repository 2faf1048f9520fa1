"""The mixture loader: deterministic draws by weight, exact resume, the max_epochs refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from superlab.common import RunDir
from superlab.config.recipe import Recipe
from superlab.train.loader import Mixture, MixtureLoader, SourceSampler, usage_of
from superlab.train.trainer import Trainer

from .conftest import EOS, VOCAB, tiny_recipe

# Each source's tokens lie in its own id range, so a window says which source it came from.
RANGES = {"web": (1, 20), "code": (20, 40), "chat": (40, VOCAB)}


def write_mixed_shards(root: Path, sizes: dict[str, dict[str, list[int]]]) -> Path:
    """Shards tagged by source: ``sizes[source][split]`` = tokens of each of its shards."""
    rng = np.random.default_rng(0)
    shards_dir = root / "data" / "shards"
    index: dict = {"dtype": "uint16", "vocab_size": VOCAB, "eos_id": EOS, "splits": {}}
    for source, splits in sizes.items():
        (shards_dir / source).mkdir(parents=True)
        for split, shard_sizes in splits.items():
            for n, size in enumerate(shard_sizes):
                lo, hi = RANGES[source]
                tokens = rng.integers(lo, hi, size=size).astype("<u2")
                starts = np.arange(0, size, 10, dtype=np.int64)
                name = f"{source}/{split}-{n:05d}"
                tokens.tofile(shards_dir / f"{name}.bin")
                np.save(shards_dir / f"{name}.docs.npy", starts)
                index["splits"].setdefault(split, []).append(
                    {"file": f"{name}.bin", "docs_file": f"{name}.docs.npy", "tokens": size,
                     "docs": len(starts), "text_bytes": size * 3, "source": source}
                )  # fmt: skip
    index["sources"] = list(sizes)
    (shards_dir / "index.json").write_text(json.dumps(index))
    return shards_dir


def source_of(row: torch.Tensor) -> str:
    lo = int(row.min())
    return next(s for s, (a, b) in RANGES.items() if a <= lo < b)


SIZES = {"web": {"train": [900, 500]}, "code": {"train": [600]}, "chat": {"train": [400]}}


def test_sources_are_drawn_by_weight_and_deterministically(tmp_path):
    shards = write_mixed_shards(tmp_path, SIZES)
    mixture = Mixture({"web": 0.5, "code": 0.3, "chat": 0.2}, {s: 100.0 for s in SIZES})
    a = MixtureLoader(shards, mixture, batch_size=8, seq_len=8, seed=3)
    b = MixtureLoader(shards, mixture, batch_size=8, seq_len=8, seed=3)
    counts = dict.fromkeys(SIZES, 0)
    for _ in range(250):  # 2,000 rows
        xa, ya, _ = a.next_batch()
        xb, _, _ = b.next_batch()
        assert torch.equal(xa, xb) and torch.equal(xa[:, 1:], ya[:, :-1])
        for row in xa:
            counts[source_of(row)] += 1
    assert counts["web"] / 2000 == pytest.approx(0.5, abs=0.03)
    assert counts["code"] / 2000 == pytest.approx(0.3, abs=0.03)
    assert counts["chat"] / 2000 == pytest.approx(0.2, abs=0.03)
    used = a.usage()
    assert sum(u["windows"] for u in used.values()) == 2000
    assert used["code"]["windows"] == counts["code"]
    assert used["code"]["epochs"] == pytest.approx(counts["code"] / ((600 - 1) // 8))
    other = MixtureLoader(shards, mixture, batch_size=8, seq_len=8, seed=4)
    assert not torch.equal(other.next_batch()[0], MixtureLoader(
        shards, mixture, batch_size=8, seq_len=8, seed=3).next_batch()[0])  # fmt: skip


def test_a_zero_weight_source_is_never_drawn_and_draws_share_their_uniforms():
    with_chat = SourceSampler({"web": 0.5, "code": 0.3, "chat": 0.2}, seed=1)
    without = SourceSampler({"web": 0.5, "code": 0.3, "chat": 0.0}, seed=1)
    a = [with_chat(n) for n in range(10_000)]
    b = [without(n) for n in range(10_000)]
    assert "chat" not in b
    # The same uniforms: a draw that picked web with chat in the mixture still picks web.
    assert all(y == "web" for x, y in zip(a, b, strict=True) if x == "web")


def test_resume_continues_with_the_exact_next_batch(tmp_path):
    shards = write_mixed_shards(tmp_path, SIZES)
    mixture = Mixture({"web": 0.6, "code": 0.2, "chat": 0.2}, {s: 100.0 for s in SIZES})
    kw = dict(batch_size=6, seq_len=8, seed=1, documents=True)
    a = MixtureLoader(shards, mixture, **kw)
    for _ in range(700):  # 4,200 rows: past DRAW_BLOCK and past every source's epoch
        a.next_batch()
    assert all(pos["epoch"] >= 1 for pos in a.state()["sources"].values())
    b = MixtureLoader(shards, mixture, **kw)
    b.load_state(json.loads(json.dumps(a.state())))  # as stored in state.json
    for _ in range(5):
        for ta, tb in zip(a.next_batch(), b.next_batch(), strict=True):
            assert torch.equal(ta, tb)
    ranks = [MixtureLoader(shards, mixture, **kw, rank=r, world_size=2) for r in (0, 1)]
    for ld in ranks:
        ld.load_state(a.state())
    whole = a.next_batch().x_BT
    assert torch.equal(torch.cat([ld.next_batch().x_BT for ld in ranks]), whole)


def test_a_weight_needing_more_than_max_epochs_is_refused_in_one_line(tmp_path):
    shards = write_mixed_shards(tmp_path, SIZES)
    # chat: 399 // 8 = 49 windows; 0.5 of 100 steps x 8 rows = 400 rows = 8.16 epochs.
    mixture = Mixture({"web": 0.5, "code": 0.0, "chat": 0.5}, {"web": 4, "code": 4, "chat": 4},
                      rows=800, steps=100)  # fmt: skip
    with pytest.raises(ValueError) as e:
        MixtureLoader(shards, mixture, batch_size=8, seq_len=8)
    msg = str(e.value)
    assert "\n" not in msg
    assert "data.sources 'chat'" in msg and "8.16 epochs" in msg and "400 train tokens" in msg
    assert "max_epochs 4" in msg
    ok = Mixture({"web": 0.5, "code": 0.0, "chat": 0.5}, {"web": 4, "code": 4, "chat": 9},
                 rows=800, steps=100)  # fmt: skip
    MixtureLoader(shards, ok, batch_size=8, seq_len=8)


def test_usage_of_a_stored_state():
    state = {"draws": 30, "seq_len": 4,
             "sources": {"a": {"epoch": 1, "index": 5, "windows": 10}}}  # fmt: skip
    assert usage_of(state) == {"a": {"windows": 15, "tokens": 60, "epochs": 1.5}}


def mixed_recipe(**train: object) -> Recipe:
    raw = tiny_recipe(**train).model_dump(mode="json")
    raw["data"] = {"sources": [
        {"name": "web", "weight": 0.5}, {"name": "code", "weight": 0.3},
        {"name": "chat", "weight": 0.2},
    ]}  # fmt: skip
    return Recipe.model_validate(raw)


class Crash(Exception):
    pass


def test_a_mixture_run_resumes_bitwise(tmp_path_factory):
    sizes = {s: {**v, "heldout": [200]} for s, v in SIZES.items()}
    straight = RunDir(tmp_path_factory.mktemp("straight"))
    write_mixed_shards(straight.root, sizes)
    Trainer(mixed_recipe(), straight).train()
    run = RunDir(tmp_path_factory.mktemp("crashed"))
    write_mixed_shards(run.root, sizes)
    first = Trainer(mixed_recipe(), run)
    assert isinstance(first.loader, MixtureLoader)
    step = first._train_step

    def step_then_crash() -> None:
        step()
        if first.step == 6:
            raise Crash

    first._train_step = step_then_crash
    with pytest.raises(Crash):
        first.train()
    Trainer(mixed_recipe(), run).train()  # resumes from step 4
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    want = [json.loads(line) for line in straight.metrics.read_text().splitlines()]
    assert [(r["step"], r.get("loss")) for r in rows] == [(r["step"], r.get("loss")) for r in want]
    state = json.loads((run.ckpt / "step-12" / "state.json").read_text())
    assert state["loader"]["draws"] == 12 * 4 and set(state["loader"]["sources"]) == set(SIZES)
