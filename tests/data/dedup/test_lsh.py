"""LSH banding and clustering: planted near duplicates found, verify drops false candidates."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from superlab.config.recipe import MinHashConfig
from superlab.data.dedup import MinHasher, near_duplicates, signature_path, write_signatures
from superlab.data.dedup.lsh import run_edges
from superlab.data.document import Document

from .textgen import block_edit, doc, exact_jaccard

CFG = MinHashConfig()


def _corpus(n: int, seed: int) -> tuple[list[str], dict[int, int]]:
    """``n`` random documents then a 5%-edited copy of every 10th: (texts, copy -> base)."""
    rng = random.Random(seed)
    texts = [doc(rng, rng.randint(80, 400)) for _ in range(n)]
    planted = {}
    for base in range(0, n, 10):
        planted[len(texts)] = base
        texts.append(block_edit(rng, texts[base], 0.05))
    return texts, planted


def _write_shards(texts: list[str], out: Path, n_shards: int, cfg: MinHashConfig) -> list[Path]:
    hasher = MinHasher(cfg)
    paths = []
    for s, part in enumerate(np.array_split(np.arange(len(texts)), n_shards)):
        docs = (Document(f"d{i}", texts[i], source=f"shard{s}.jsonl", offset=int(i)) for i in part)
        paths.append(signature_path(out, s))
        assert write_signatures(docs, paths[-1], hasher, batch_size=128) == len(part)
    return paths


def test_run_edges_link_members_to_first() -> None:
    key = np.array([1, 1, 1, 5, 7, 7], dtype=np.uint64)
    idx = np.array([2, 4, 9, 0, 3, 8])
    assert run_edges(key, idx, with_prev=False).tolist() == [[2, 4], [2, 9], [3, 8]]
    with_prev = run_edges(key, idx, with_prev=True).tolist()
    assert with_prev == [[2, 4], [2, 9], [3, 8], [2, 4], [4, 9], [3, 8]]


def test_planted_near_duplicates_found_over_shards(tmp_path: Path) -> None:
    texts, planted = _corpus(3000, seed=0)
    paths = _write_shards(texts, tmp_path / "sig", 5, CFG)
    res = near_duplicates(paths, tmp_path / "work", CFG)
    assert res.n_docs == len(texts) and res.shard_offsets[-1] == len(texts)
    # Each copy is ~0.9 Jaccard to its base: caught with probability > 0.99 at 14x8 (MMDS 3.4).
    assert res.survivors() == planted
    assert res.clusters == len(planted) and res.stats()["removed"] == len(planted)
    assert res.cluster.tolist() == list(range(len(planted)))
    # Same result with everything in one shard: sharding only bounds memory.
    one = near_duplicates(_write_shards(texts, tmp_path / "one", 1, CFG), tmp_path / "w1", CFG)
    assert (one.removed == res.removed).all() and (one.survivor == res.survivor).all()
    last = len(paths) - 1
    lo = int(res.shard_offsets[last])
    assert res.removed_in_shard(last) == {g - lo: b for g, b in planted.items() if g >= lo}


def test_transitive_cluster_keeps_first_document(tmp_path: Path) -> None:
    rng = random.Random(3)
    a = doc(rng, 300)
    b = block_edit(rng, a, 0.05)
    c = block_edit(rng, b, 0.05)
    texts = [doc(rng, 200), c, b, a, doc(rng, 200)]
    res = near_duplicates(_write_shards(texts, tmp_path / "s", 2, CFG), tmp_path / "w", CFG)
    assert res.survivors() == {2: 1, 3: 1} and res.clusters == 1


def test_verify_drops_false_candidates(tmp_path: Path) -> None:
    # 20 bands of 1 row: documents at Jaccard ~0.3 share some band almost surely.
    loose = MinHashConfig(bands=20, rows=1)
    rng = random.Random(4)
    a = doc(rng, 300)
    far = block_edit(rng, a, 0.5)
    near = block_edit(rng, a, 0.03)
    texts = [a, far, near]
    assert exact_jaccard(a, far) < 0.5 < 0.7 < exact_jaccard(a, near)
    paths = _write_shards(texts, tmp_path / "s", 1, loose)
    plain = near_duplicates(paths, tmp_path / "w", loose)
    assert plain.survivors() == {1: 0, 2: 0} and plain.jaccard is None
    strict = loose.model_copy(update={"verify": True})
    with pytest.raises(ValueError, match="needs texts"):
        near_duplicates(paths, tmp_path / "w", strict)
    got = near_duplicates(paths, tmp_path / "w", strict, texts=lambda idx: [texts[i] for i in idx])
    assert got.survivors() == {2: 0} and got.rejected_pairs >= 1
    assert got.jaccard is not None and got.jaccard[0] == pytest.approx(exact_jaccard(a, near))


def test_duplicates_parquet(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="duplicates.parquet needs pyarrow")
    from superlab.data.dedup.lsh_sink import write_duplicates_parquet

    texts, planted = _corpus(200, seed=5)
    cfg = CFG.model_copy(update={"verify": True})
    paths = _write_shards(texts, tmp_path / "s", 3, cfg)
    res = near_duplicates(paths, tmp_path / "w", cfg, texts=lambda idx: [texts[i] for i in idx])
    out = tmp_path / "duplicates.parquet"
    assert write_duplicates_parquet(res, paths, out) == len(planted)
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [f"d{g}" for g in sorted(planted)]
    assert [r["survivor_id"] for r in rows] == [f"d{planted[g]}" for g in sorted(planted)]
    assert rows[0]["offset"] == min(planted) and rows[0]["source"].startswith("shard")
    assert all(0.7 <= r["jaccard"] <= 1 for r in rows) and rows[-1]["cluster"] == len(planted) - 1
