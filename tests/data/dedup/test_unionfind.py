"""Union-find over int64 arrays: transitive clusters, the smallest index as root."""

from __future__ import annotations

import numpy as np

from superlab.data.dedup.unionfind import UnionFind


def test_transitive_clusters_with_min_index_root() -> None:
    uf = UnionFind(8)
    uf.union(np.array([5, 3, 7]), np.array([3, 1, 6]))  # 5-3-1 chain, 7-6
    uf.union(np.array([6]), np.array([4]))  # 7-6-4
    assert uf.roots().tolist() == [0, 1, 2, 1, 4, 1, 4, 4]


def test_matches_reference_components_in_any_edge_order() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    a, b = rng.integers(0, n, 1500), rng.integers(0, n, 1500)
    # Reference: label propagation to a fixed point (each node gets its component's minimum).
    label = np.arange(n)
    while True:
        m = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        if (new == label).all():
            break
        label = new
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(a))
        uf = UnionFind(n)
        for part in np.array_split(order, 5):
            uf.union(a[part], b[part])
        assert (uf.roots() == label).all()
