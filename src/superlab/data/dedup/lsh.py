"""LSH banding of MinHash signatures (Leskovec et al., MMDS ch. 3.4), clustered in bounded memory.

Two documents are candidates when all ``rows`` entries of any one of ``bands`` bands agree; at
FineWeb's 14 bands x 8 rows that happens with probability ``1 - (1 - s^8)^14`` for Jaccard
``s`` (0.5 at s ~ 0.72, 0.92 at s = 0.8). Per band and shard, ``(band key, global index)`` is
sorted and written to disk; each band is then sorted globally (16 bytes per document: 16 MB per
million), runs of equal keys give candidate pairs, and a union-find over an int64 array joins
them into clusters whose survivor is the first document in corpus order.

Legend: N documents (global), n documents of one shard, P signature entries, E candidate edges.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from superlab.config.recipe import MinHashConfig
from superlab.data.dedup.minhash import MinHasher, _fmix64, jaccard
from superlab.data.dedup.minhash_store import save_array
from superlab.data.dedup.unionfind import UnionFind

TextsFn = Callable[[np.ndarray], Sequence[str]]  # sorted global indices -> their texts, in order
_U64 = np.uint64


def band_keys(sig_nP: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """A 64-bit key per (document, band), chained fmix64 over the band's entries: (n, bands).

    Two different bands of the same document never share a key space: band b is seeded with b.
    A false key collision of two distinct bands is ~2^-64 likely (~3e-8 per band at 1M docs).
    """
    n = sig_nP.shape[0]
    key_nB = np.broadcast_to(np.arange(bands, dtype=np.uint64) + _U64(1), (n, bands)).copy()
    for r in range(rows):
        # Columns r, r + rows, ...: entry r of every band, (n, bands).
        v_nB = np.asarray(sig_nP[:, r : bands * rows : rows], dtype=np.uint64)
        key_nB ^= v_nB * _U64(0x9E3779B97F4A7C15)
        _fmix64(key_nB)
    return key_nB


def run_edges(key_N: np.ndarray, idx_N: np.ndarray, with_prev: bool) -> np.ndarray:
    """Edges (E, 2) linking every member of a run of equal keys to the run's first (smallest index).

    ``key_N`` is sorted and, within equal keys, ``idx_N`` ascends. With ``with_prev`` each member
    is also linked to its predecessor, so verification sees a chain even when the first is an
    outlier.
    """
    return same_run_edges(key_N[1:] == key_N[:-1], idx_N, with_prev)


def same_run_edges(same: np.ndarray, idx_N: np.ndarray, with_prev: bool) -> np.ndarray:
    """``run_edges`` given ``same`` (N - 1,): whether each row continues the previous row's run."""
    member = np.flatnonzero(same) + 1
    if not len(member):
        return np.empty((0, 2), dtype=np.int64)
    start = np.flatnonzero(np.r_[True, ~same])
    first = start[np.searchsorted(start, member, side="right") - 1]
    edges = [np.stack([idx_N[first], idx_N[member]], axis=1)]
    if with_prev:
        edges.append(np.stack([idx_N[member - 1], idx_N[member]], axis=1))
    return np.concatenate(edges)


@dataclass
class NearDupResult:
    """Which documents to remove: global indices, with their survivor and cluster, plus counters."""

    n_docs: int
    shard_offsets: np.ndarray  # (n_shards + 1,) first global index of each shard, then N
    removed: np.ndarray  # (R,) int64 sorted global indices of documents to drop
    survivor: np.ndarray  # (R,) int64 global index kept in their place (smallest in the cluster)
    cluster: np.ndarray  # (R,) int64 dense cluster id, numbered by survivor order
    jaccard: np.ndarray | None  # (R,) exact n-gram Jaccard to the survivor (verify mode only)
    candidate_pairs: int  # distinct pairs sharing at least one band key
    rejected_pairs: int  # candidates below verify_threshold (0 without verify)
    clusters: int  # clusters of two or more documents

    def survivors(self) -> dict[int, int]:
        """Removed global index -> survivor global index."""
        return dict(zip(self.removed.tolist(), self.survivor.tolist(), strict=True))

    def removed_in_shard(self, shard: int) -> dict[int, int]:
        """Within shard ``shard``: local index of each removed document -> survivor global index."""
        lo, hi = self.shard_offsets[shard], self.shard_offsets[shard + 1]
        a, b = np.searchsorted(self.removed, [lo, hi])
        return dict(
            zip((self.removed[a:b] - lo).tolist(), self.survivor[a:b].tolist(), strict=True)
        )

    def stats(self) -> dict[str, int]:
        """Counters for ``stats.json``."""
        return {
            "docs": self.n_docs,
            "candidate_pairs": self.candidate_pairs,
            "rejected_pairs": self.rejected_pairs,
            "clusters": self.clusters,
            "removed": len(self.removed),
        }


def _write_band_runs(sig_files: Sequence[Path], band_dir: Path, cfg: MinHashConfig) -> np.ndarray:
    """Per shard and band, write ``(key, global index)`` sorted by key; return the shard offsets."""
    offsets = [0]
    for s, path in enumerate(sig_files):
        sig_nP = np.load(path, mmap_mode="r")
        if sig_nP.ndim != 2 or sig_nP.shape[1] != cfg.bands * cfg.rows:
            want = cfg.bands * cfg.rows
            raise ValueError(f"{path}: signatures of shape {sig_nP.shape}, expected (n, {want})")
        key_nB = band_keys(sig_nP, cfg.bands, cfg.rows)
        idx_n = np.arange(offsets[-1], offsets[-1] + len(sig_nP), dtype=np.uint64)
        for b in range(cfg.bands):
            order = np.argsort(key_nB[:, b], kind="stable")
            key_idx_n2 = np.stack([key_nB[order, b], idx_n[order]], axis=1)
            save_array(band_dir / f"{b:03d}" / f"{s:05d}.npy", key_idx_n2)
        offsets.append(offsets[-1] + len(sig_nP))
    return np.asarray(offsets, dtype=np.int64)


def _band_edges(band_dir: Path, b: int, n_shards: int, with_prev: bool) -> np.ndarray:
    """Merge one band's sorted shard runs and return its candidate edges (E, 2)."""
    runs = [np.load(band_dir / f"{b:03d}" / f"{s:05d}.npy") for s in range(n_shards)]
    key_idx = np.concatenate(runs) if runs else np.empty((0, 2), dtype=np.uint64)
    # Stable sort keeps ascending global index within equal keys (shards are in corpus order).
    order = np.argsort(key_idx[:, 0], kind="stable")
    return run_edges(key_idx[order, 0], key_idx[order, 1].astype(np.int64), with_prev)


class ShingleCache:
    """Shingle sets of the documents verification needs, fetched in one batch."""

    def __init__(self, hasher: MinHasher, texts: TextsFn, idx: np.ndarray) -> None:
        idx = np.unique(idx)
        self.sets = dict(zip(idx.tolist(), map(hasher.shingle_set, texts(idx)), strict=True))

    def jaccard(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        s = self.sets
        pairs = zip(a.tolist(), b.tolist(), strict=True)
        return np.fromiter((jaccard(s[i], s[j]) for i, j in pairs), np.float64, count=len(a))


def near_duplicates(
    signature_files: Sequence[Path],
    work_dir: Path,
    cfg: MinHashConfig,
    texts: TextsFn | None = None,
) -> NearDupResult:
    """Cluster the documents of ``signature_files`` (global index = order in that list) by LSH.

    ``texts`` (needed when ``cfg.verify``) returns the texts of sorted global indices; then only
    candidate pairs with exact n-gram Jaccard >= ``cfg.verify_threshold`` are linked.
    """
    if cfg.verify and texts is None:
        raise ValueError("MinHash verify=True needs texts: pass texts=<function of global indices>")
    band_dir = Path(work_dir) / "bands"
    shutil.rmtree(band_dir, ignore_errors=True)
    offsets = _write_band_runs([Path(p) for p in signature_files], band_dir, cfg)
    n_docs = int(offsets[-1])
    edges = [_band_edges(band_dir, b, len(signature_files), cfg.verify) for b in range(cfg.bands)]
    edge_E2 = np.unique(np.concatenate(edges), axis=0) if edges else np.empty((0, 2), np.int64)
    shutil.rmtree(band_dir, ignore_errors=True)
    candidates, rejected = len(edge_E2), 0
    cache = None
    if cfg.verify and candidates:
        cache = ShingleCache(MinHasher(cfg), texts, edge_E2.ravel())
        ok = cache.jaccard(edge_E2[:, 0], edge_E2[:, 1]) >= cfg.verify_threshold
        rejected = int((~ok).sum())
        edge_E2 = edge_E2[ok]
    uf = UnionFind(n_docs)
    uf.union(edge_E2[:, 0], edge_E2[:, 1])
    root_N = uf.roots()
    removed = np.flatnonzero(root_N != np.arange(n_docs))
    survivor = root_N[removed]
    keep_ids, cluster = np.unique(survivor, return_inverse=True)
    sim = None
    if cfg.verify:
        sim = cache.jaccard(removed, survivor) if cache is not None else np.empty(0)
    return NearDupResult(
        n_docs=n_docs,
        shard_offsets=offsets,
        removed=removed.astype(np.int64),
        survivor=survivor.astype(np.int64),
        cluster=cluster.astype(np.int64),
        jaccard=sim,
        candidate_pairs=candidates,
        rejected_pairs=rejected,
        clusters=len(keep_ids),
    )
