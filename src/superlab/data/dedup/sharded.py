"""Near-dedup in four sharded phases, each task's memory bounded by its shard, not the corpus.

The same clustering as ``lsh.near_duplicates`` (same candidate pairs, same clusters, same
survivor: the first document in corpus order), split into tasks an executor runs in parallel
(datatrove's signatures -> buckets -> clusters -> filter, with our union-find):

1. **buckets**, one task per signature file: its band keys, ``(band, key, global index)``,
   split by ``key % S`` into ``S`` bucket files.
2. **edges**, one task per bucket: its rows from every signature file, sorted by
   ``(band, key, index)``; runs of an equal ``(band, key)`` give candidate edges ``(a, b)``,
   ``a < b``, split by ``a``'s range of the corpus into ``S`` edge partitions.
3. **clusters**, one task per edge partition: its edges from every bucket, made distinct
   (every copy of a pair lands in the partition of its ``a``, so distinct counts add up),
   verified when ``cfg.verify``, then reduced by a union-find over the partition's own
   documents to one edge per non-root document (same connectivity, fewer edges).
4. **merge**, one task: a union-find over the reduced edges of every partition. Memory is
   ~40 bytes per document that has a near duplicate, none for the others.

Every task writes its outputs, then its marker (``.done``, JSON, by atomic rename); a phase is
complete when ``<phase>.done`` exists, and its input directory is then removed. A killed run
resumes where it stopped and ends with the same result. Tasks report their own peak RSS.

Legend: N documents (global), n documents of one signature file, B bands, S bucket shards,
M rows of one bucket, E edges.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from superlab.common import atomic_write_json
from superlab.config.recipe import MinHashConfig
from superlab.data.dedup.lsh import NearDupResult, ShingleCache, TextsFn, band_keys, same_run_edges
from superlab.data.dedup.minhash import MinHasher
from superlab.data.dedup.minhash_store import save_array
from superlab.data.dedup.unionfind import UnionFind

BUCKET_DOCS = 250_000  # documents per bucket shard when S is chosen automatically (~0.3 GiB/task)
# Test-only: seconds each task sleeps between writing its outputs and its marker.
DELAY_ENV = "SUPERLAB_TEST_LSH_DELAY"
Stats = dict[str, Any]
MapFn = Callable[[Callable[[Any], Stats], Sequence[Any]], list[Stats]]


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def auto_bucket_shards(n_docs: int) -> int:
    """S when not set: one bucket shard per ``BUCKET_DOCS`` documents, at least one."""
    return max(1, -(-n_docs // BUCKET_DOCS))


def partition_bounds(n_docs: int, parts: int) -> np.ndarray:
    """(parts + 1,) first global index of each edge partition, then N: equal ranges."""
    return np.asarray([n_docs * p // parts for p in range(parts + 1)], dtype=np.int64)


@dataclass(frozen=True)
class BucketTask:
    """Phase 1: signature file ``shard`` (global indices from ``offset``) into ``buckets`` files."""

    sig: str
    shard: int
    offset: int
    out: str
    buckets: int
    bands: int
    rows: int


@dataclass(frozen=True)
class EdgeTask:
    """Phase 2: bucket ``bucket`` from ``shards`` signature files into ``parts`` edge partitions."""

    bucket: int
    shards: int
    bucket_dir: str
    out: str
    bounds: tuple[int, ...]


@dataclass(frozen=True)
class ClusterTask:
    """Phase 3: edge partition ``part`` from ``buckets`` edge files, reduced."""

    part: int
    buckets: int
    edge_dir: str
    out: str
    cfg: dict[str, Any]
    texts: TextsFn | None


@dataclass(frozen=True)
class MergeTask:
    """Phase 4: the reduced edges of ``parts`` partitions into the final clusters."""

    parts: int
    cluster_dir: str
    out: str
    cfg: dict[str, Any]
    texts: TextsFn | None


def _done(path: Path, stats: Stats) -> Stats:
    stats["rss_mib"] = peak_rss_mib()
    if delay := float(os.environ.get(DELAY_ENV, "0")):
        time.sleep(delay)  # outputs written, marker not: where a test kills the run
    atomic_write_json(path, stats)
    return stats


def bucket_shard(task: BucketTask) -> Stats:
    """Write ``(band, key, global index)`` of one signature file, split by ``key % S``."""
    out = Path(task.out)
    sig_nP = np.load(task.sig, mmap_mode="r")
    if sig_nP.ndim != 2 or sig_nP.shape[1] != task.bands * task.rows:
        want = task.bands * task.rows
        raise ValueError(f"{task.sig}: signatures of shape {sig_nP.shape}, expected (n, {want})")
    n = len(sig_nP)
    key_M = band_keys(sig_nP, task.bands, task.rows).ravel()  # document-major: (n * B,)
    band_M = np.tile(np.arange(task.bands, dtype=np.uint64), n)
    idx_M = np.repeat(np.arange(task.offset, task.offset + n, dtype=np.uint64), task.bands)
    bucket_M = key_M % np.uint64(task.buckets)
    if task.buckets <= 2**16:
        bucket_M = bucket_M.astype(np.uint16)  # numpy's stable sort is a radix sort at 16 bits
    order = np.argsort(bucket_M, kind="stable")
    cuts = np.searchsorted(bucket_M[order], np.arange(task.buckets + 1))
    rows_M3 = np.stack([band_M, key_M, idx_M], axis=1)[order]
    for j in range(task.buckets):
        save_array(out / f"{task.shard:05d}-{j:05d}.npy", rows_M3[cuts[j] : cuts[j + 1]])
    return _done(out / f"{task.shard:05d}.done", {"docs": n})


def edge_shard(task: EdgeTask, with_prev: bool = False) -> Stats:
    """Candidate edges of one bucket, split into edge partitions by their first document."""
    src, out = Path(task.bucket_dir), Path(task.out)
    rows = [np.load(src / f"{s:05d}-{task.bucket:05d}.npy") for s in range(task.shards)]
    rows_M3 = np.concatenate(rows) if rows else np.empty((0, 3), dtype=np.uint64)
    del rows
    # Rows arrive in global index order (files in corpus order, each document-major). Two
    # stable sorts, by key then by band (a radix sort on uint16), order them by (band, key,
    # index).
    order = np.argsort(rows_M3[:, 1], kind="stable")
    band_M = rows_M3[order, 0]
    if len(band_M) and band_M.max() < 2**16:
        band_M = band_M.astype(np.uint16)
    order = order[np.argsort(band_M, kind="stable")]
    del band_M
    rows_M3 = rows_M3[order]
    del order
    same = (rows_M3[1:, 0] == rows_M3[:-1, 0]) & (rows_M3[1:, 1] == rows_M3[:-1, 1])
    edge_E2 = same_run_edges(same, rows_M3[:, 2].astype(np.int64), with_prev)
    del rows_M3, same
    edge_E2 = edge_E2[np.argsort(edge_E2[:, 0], kind="stable")]
    bounds = np.asarray(task.bounds, dtype=np.int64)
    cuts = np.searchsorted(edge_E2[:, 0], bounds)
    for p in range(len(bounds) - 1):
        save_array(out / f"{task.bucket:05d}-{p:05d}.npy", edge_E2[cuts[p] : cuts[p + 1]])
    return _done(out / f"{task.bucket:05d}.done", {"edges": len(edge_E2)})


def _edge_shard_verify(task: EdgeTask) -> Stats:
    """``edge_shard`` linking each run member to its predecessor too (verify mode)."""
    return edge_shard(task, with_prev=True)


def _roots(edge_E2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct documents of ``edge_E2`` (sorted) and each one's root, the least of its set."""
    node_K = np.unique(edge_E2)
    uf = UnionFind(len(node_K))
    uf.union(np.searchsorted(node_K, edge_E2[:, 0]), np.searchsorted(node_K, edge_E2[:, 1]))
    return node_K, node_K[uf.roots()]


def cluster_shard(task: ClusterTask) -> Stats:
    """One partition's distinct (and verified) edges, reduced to one edge per non-root document."""
    src, out = Path(task.edge_dir), Path(task.out)
    parts = [np.load(src / f"{j:05d}-{task.part:05d}.npy") for j in range(task.buckets)]
    edge_E2 = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)
    edge_E2 = np.unique(edge_E2, axis=0)
    candidates, rejected = len(edge_E2), 0
    cfg = MinHashConfig(**task.cfg)
    if cfg.verify and candidates:
        assert task.texts is not None
        cache = ShingleCache(MinHasher(cfg), task.texts, edge_E2.ravel())
        ok = cache.jaccard(edge_E2[:, 0], edge_E2[:, 1]) >= cfg.verify_threshold
        rejected = int((~ok).sum())
        edge_E2 = edge_E2[ok]
    node_K, root_K = _roots(edge_E2)
    moved = node_K != root_K
    save_array(out / f"{task.part:05d}.npy", np.stack([root_K[moved], node_K[moved]], axis=1))
    stats = {"candidate_pairs": candidates, "rejected_pairs": rejected}
    return _done(out / f"{task.part:05d}.done", stats)


def merge_clusters(task: MergeTask) -> Stats:
    """The final clusters from every partition's reduced edges: removed, survivor, cluster."""
    src, out = Path(task.cluster_dir), Path(task.out)
    parts = [np.load(src / f"{p:05d}.npy") for p in range(task.parts)]
    edge_E2 = np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)
    node_K, root_K = _roots(edge_E2.astype(np.int64))
    moved = node_K != root_K
    removed, survivor = node_K[moved], root_K[moved]
    keep, cluster = np.unique(survivor, return_inverse=True)
    arrays = {"removed": removed, "survivor": survivor, "cluster": cluster.astype(np.int64)}
    cfg = MinHashConfig(**task.cfg)
    if cfg.verify:
        sim = np.empty(0)
        if len(removed):
            assert task.texts is not None
            cache = ShingleCache(MinHasher(cfg), task.texts, np.union1d(removed, survivor))
            sim = cache.jaccard(removed, survivor)
        arrays["jaccard"] = sim
    for name, arr in arrays.items():
        save_array(out / f"{name}.npy", arr)
    return _done(out / "merge.done", {"clusters": len(keep)})


def _phase(
    name: str,
    root: Path,
    fn: Callable[[Any], Stats],
    tasks: list[tuple[Path, Any]],
    map_fn: MapFn,
    consumed: Path | None,
) -> list[Stats]:
    """Run the tasks whose marker is missing; the stats of all, in order; ``<name>.done`` last."""
    phase_done = root / f"{name}.done"
    if phase_done.exists():
        return list(json.loads(phase_done.read_text(encoding="utf-8")))
    todo = [task for marker, task in tasks if not marker.exists()]
    for task in todo:
        Path(task.out).mkdir(parents=True, exist_ok=True)
    if todo:
        map_fn(fn, todo)
    stats = [json.loads(marker.read_text(encoding="utf-8")) for marker, _ in tasks]
    atomic_write_json(phase_done, stats)
    if consumed is not None:
        shutil.rmtree(consumed, ignore_errors=True)
    return stats


def sharded_near_duplicates(
    signature_files: Sequence[Path],
    work_dir: Path,
    cfg: MinHashConfig,
    map_fn: MapFn,
    bucket_shards: int = 0,
    texts: TextsFn | None = None,
) -> tuple[NearDupResult, dict[str, dict[str, float]]]:
    """``lsh.near_duplicates``'s result, computed by tasks ``map_fn(fn, items)`` runs.

    ``bucket_shards`` S (0 = ``auto_bucket_shards``) sets the buckets and edge partitions.
    ``texts`` (verify mode) must be picklable: tasks call it. Also returns, per phase, the
    peak RSS (MiB) of its largest task and its wall time. ``work_dir/lsh`` holds the work
    and is removed at the end.
    """
    if cfg.verify and texts is None:
        raise ValueError("MinHash verify=True needs texts: pass texts=<function of global indices>")
    sigs = [Path(p) for p in signature_files]
    sizes = [int(np.load(p, mmap_mode="r").shape[0]) for p in sigs]
    offsets = np.cumsum([0, *sizes]).astype(np.int64)
    n_docs = int(offsets[-1])
    n_buckets = bucket_shards or auto_bucket_shards(n_docs)
    root = Path(work_dir) / "lsh"
    plan = {"bucket_shards": n_buckets, "sizes": sizes, "cfg": cfg.model_dump(mode="json")}
    plan_path = root / "plan.json"
    if not plan_path.is_file() or json.loads(plan_path.read_text(encoding="utf-8")) != plan:
        shutil.rmtree(root, ignore_errors=True)  # work for another plan: start over
        root.mkdir(parents=True)
        atomic_write_json(plan_path, plan)
    dirs = {p: root / p for p in ("buckets", "edges", "clusters", "merge")}
    bounds = tuple(partition_bounds(n_docs, n_buckets).tolist())
    mh = cfg.model_dump(mode="json")
    phases: dict[str, dict[str, float]] = {}

    def run(name: str, fn: Callable[[Any], Stats], tasks: list[tuple[Path, Any]]) -> list[Stats]:
        consumed = {"edges": "buckets", "clusters": "edges", "merge": "clusters"}.get(name)
        t0 = time.perf_counter()
        stats = _phase(name, root, fn, tasks, map_fn, dirs[consumed] if consumed else None)
        phases[name] = {
            "task_rss_mib": max((s["rss_mib"] for s in stats), default=0.0),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return stats

    b = dirs["buckets"]
    run(
        "buckets",
        bucket_shard,
        [
            (b / f"{s:05d}.done", BucketTask(str(p), s, int(offsets[s]), str(b), n_buckets,
                                             cfg.bands, cfg.rows))
            for s, p in enumerate(sigs)
        ],
    )  # fmt: skip
    e = dirs["edges"]
    run(
        "edges",
        _edge_shard_verify if cfg.verify else edge_shard,
        [
            (e / f"{j:05d}.done", EdgeTask(j, len(sigs), str(b), str(e), bounds))
            for j in range(n_buckets)
        ],
    )
    c = dirs["clusters"]
    parts = run(
        "clusters",
        cluster_shard,
        [
            (c / f"{p:05d}.done", ClusterTask(p, n_buckets, str(e), str(c), mh, texts))
            for p in range(n_buckets)
        ],
    )
    m = dirs["merge"]
    (merged,) = run(
        "merge",
        merge_clusters,
        [(m / "merge.done", MergeTask(n_buckets, str(c), str(m), mh, texts))],
    )
    # The driver's one array per removed document; loaded as int64 without another copy.
    arrays = {
        k: np.load(m / f"{k}.npy").astype(np.int64, copy=False)
        for k in ("removed", "survivor", "cluster")
    }
    sim = np.load(m / "jaccard.npy") if cfg.verify else None
    result = NearDupResult(
        n_docs=n_docs,
        shard_offsets=offsets,
        removed=arrays["removed"],
        survivor=arrays["survivor"],
        cluster=arrays["cluster"],
        jaccard=sim,
        candidate_pairs=sum(s["candidate_pairs"] for s in parts),
        rejected_pairs=sum(s["rejected_pairs"] for s in parts),
        clusters=int(merged["clusters"]),
    )
    shutil.rmtree(root, ignore_errors=True)
    return result, phases
