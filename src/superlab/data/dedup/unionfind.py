"""Union-find over an int64 parent array, vectorized: edges are merged a batch at a time.

Every root is the smallest index of its set ("union by min index"), so the survivor of a
cluster, the first document in corpus order, is the same whatever order edges arrive in.
Memory is one int64 per element (8 MB per million documents) however many edges are merged.
"""

from __future__ import annotations

import numpy as np


class UnionFind:
    """Disjoint sets over ``0..n-1``; ``parent[i] <= i`` always, so roots are set minima."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: np.ndarray) -> np.ndarray:
        """The root of each element of ``x``, halving paths (Tarjan & van Leeuwen 1984)."""
        x = np.asarray(x, dtype=np.int64)
        parent = self.parent
        while True:
            p = parent[x]
            if np.array_equal(p, x):
                return x
            # Path halving: every visited node skips to its grandparent.
            gp = parent[p]
            parent[x] = gp
            x = gp

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Merge the set of ``a[i]`` with that of ``b[i]`` for every i."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        while len(a):
            ra, rb = self.find(a), self.find(b)
            todo = ra != rb
            if not todo.any():
                return
            ra, rb = ra[todo], rb[todo]
            hi, lo = np.maximum(ra, rb), np.minimum(ra, rb)
            # Hook each larger root under the smaller one; when one root gets several offers
            # the smallest wins and the other edges go round again (Shiloach-Vishkin hooking).
            np.minimum.at(self.parent, hi, lo)
            a, b = a[todo], b[todo]

    def roots(self) -> np.ndarray:
        """The root of every element (compressing all paths fully)."""
        parent = self.parent
        while True:
            gp = parent[parent]
            if np.array_equal(gp, parent):
                return parent.copy()
            parent[:] = gp
