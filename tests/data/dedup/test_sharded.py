"""Sharded near-dedup gives exactly the single-process result, resumes, and bounds its tasks."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from superlab.config.recipe import MinHashConfig
from superlab.data.dedup import near_duplicates
from superlab.data.dedup.lsh import NearDupResult
from superlab.data.dedup.minhash_store import save_array, signature_path
from superlab.data.dedup.sharded import (
    auto_bucket_shards,
    bucket_shard,
    partition_bounds,
    sharded_near_duplicates,
)
from superlab.data.dedup.synthetic import synthetic_signatures

from .test_lsh import _write_shards
from .textgen import block_edit, doc

CFG = MinHashConfig()


def _synthetic(out: Path, n: int, shard_docs: int) -> list[Path]:
    paths = []
    for s, lo in enumerate(range(0, n, shard_docs)):
        paths.append(signature_path(out, s))
        save_array(paths[-1], synthetic_signatures(lo, min(n, lo + shard_docs), 112, seed=3))
    return paths


def _serial(fn, items):  # type: ignore[no-untyped-def]
    return [fn(x) for x in items]


def _same(a: NearDupResult, b: NearDupResult) -> None:
    for f in ("removed", "survivor", "cluster", "shard_offsets"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.stats() == b.stats()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], NearDupResult]:
    """20k synthetic documents in 7 uneven signature files, and the single-process result."""
    tmp = tmp_path_factory.mktemp("sharded")
    paths = _synthetic(tmp / "sig", 20_000, 3_000)
    return paths, near_duplicates(paths, tmp / "single", CFG)


def test_synthetic_corpus_has_clusters_of_several_documents(corpus) -> None:  # type: ignore[no-untyped-def]
    _, ref = corpus
    sizes = np.bincount(np.bincount(ref.cluster) + 1)  # documents per cluster
    assert ref.stats()["removed"] > 1000 and sizes[3:].sum() > 20  # not only pairs


@pytest.mark.parametrize("bucket_shards", [1, 4, 13])
def test_sharded_equals_single_process(corpus, tmp_path: Path, bucket_shards: int) -> None:  # type: ignore[no-untyped-def]
    paths, ref = corpus
    got, phases = sharded_near_duplicates(paths, tmp_path, CFG, _serial, bucket_shards)
    _same(got, ref)
    assert list(phases) == ["buckets", "edges", "clusters", "merge"]
    assert all(p["task_rss_mib"] > 0 for p in phases.values())
    assert not (tmp_path / "lsh").exists()  # work removed once done


def test_verify_mode_matches_single_process(tmp_path: Path) -> None:
    # 20 bands of 1 row: loose candidates, some rejected by the exact Jaccard check.
    cfg = MinHashConfig(bands=20, rows=1, verify=True)
    rng = random.Random(11)
    texts = []
    for _ in range(60):
        base = doc(rng, 200)
        texts += [base, block_edit(rng, base, 0.03), block_edit(rng, base, 0.5)]
    paths = _write_shards(texts, tmp_path / "s", 4, cfg)

    def fetch(idx):  # type: ignore[no-untyped-def]
        return [texts[i] for i in idx]

    ref = near_duplicates(paths, tmp_path / "w", cfg, texts=fetch)
    got, _ = sharded_near_duplicates(paths, tmp_path / "w2", cfg, _serial, 3, texts=fetch)
    _same(got, ref)
    assert ref.rejected_pairs > 0 and ref.jaccard is not None and got.jaccard is not None
    assert np.array_equal(got.jaccard, ref.jaccard)
    with pytest.raises(ValueError, match="needs texts"):
        sharded_near_duplicates(paths, tmp_path / "w3", cfg, _serial, 3)


def test_interrupted_run_resumes_from_its_markers(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths, ref = corpus
    calls: list[int] = []

    def dies_in_edges(fn, items):  # type: ignore[no-untyped-def]
        if fn.__name__ == "edge_shard":
            fn(items[0])  # one bucket's task completes (marker written), then the run dies
            raise KeyboardInterrupt
        calls.append(len(items))
        return [fn(x) for x in items]

    with pytest.raises(KeyboardInterrupt):
        sharded_near_duplicates(paths, tmp_path, CFG, dies_in_edges, 4)
    lsh = tmp_path / "lsh"
    assert (lsh / "buckets.done").exists() and not (lsh / "edges.done").exists()
    assert sorted(p.name for p in (lsh / "edges").glob("*.done")) == ["00000.done"]
    calls.clear()
    ran: list[str] = []

    def recording(fn, items):  # type: ignore[no-untyped-def]
        ran.append(f"{fn.__name__}:{len(items)}")
        return [fn(x) for x in items]

    got, _ = sharded_near_duplicates(paths, tmp_path, CFG, recording, 4)
    _same(got, ref)
    # Buckets complete: not redone; edges: the 3 unfinished of 4; then all of the rest.
    assert ran == ["edge_shard:3", "cluster_shard:4", "merge_clusters:1"]


def test_other_plan_starts_over(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths, ref = corpus
    (tmp_path / "lsh" / "buckets").mkdir(parents=True)
    (tmp_path / "lsh" / "plan.json").write_text('{"bucket_shards": 99}')
    (tmp_path / "lsh" / "buckets.done").write_text("[]")  # stale: must not be trusted
    got, _ = sharded_near_duplicates(paths, tmp_path, CFG, _serial, 2)
    _same(got, ref)


def test_bucket_files_split_by_key_and_keep_index_order(corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from superlab.data.dedup.sharded import BucketTask

    paths, _ = corpus
    stats = bucket_shard(BucketTask(str(paths[1]), 1, 3000, str(tmp_path), 5, 14, 8))
    assert stats["docs"] == 3000 and (tmp_path / "00001.done").exists()
    rows = [np.load(tmp_path / f"00001-{j:05d}.npy") for j in range(5)]
    assert sum(len(r) for r in rows) == 3000 * 14
    for j, r in enumerate(rows):
        assert (r[:, 1] % 5 == j).all()
        assert (np.diff(r[:, 2].astype(np.int64)) >= 0).all()  # index order kept within a file
        assert r[:, 2].min() >= 3000 and r[:, 2].max() < 6000


def test_sizes() -> None:
    assert auto_bucket_shards(0) == 1 and auto_bucket_shards(250_001) == 2
    assert partition_bounds(10, 3).tolist() == [0, 3, 6, 10]


def test_empty_corpus(tmp_path: Path) -> None:
    path = signature_path(tmp_path / "sig", 0)
    save_array(path, np.empty((0, 112), dtype=np.uint32))
    got, _ = sharded_near_duplicates([path], tmp_path, CFG, _serial, 2)
    assert got.n_docs == 0 and got.stats()["removed"] == 0 and got.clusters == 0
