"""Synthetic MinHash signatures with planted near duplicates, for scale checks of the clustering.

Document ``i``'s signature is a pure function of ``(i, seed)``, so any range of a corpus of any
size is generated on its own (in parallel, in bounded memory) and the same every time. About
``copy_rate`` of documents are *copies*: each names an earlier *base* document (within the
previous ``window``) and takes its signature with each entry redrawn with probability 5, 10,
20 or 40% (the copy's choice). At 14 bands x 8 rows a copy matches its base's band with
probability ``(1 - q)^8`` per band: almost surely for 5%, rarely for 40%; copies of one base
also match each other, so clusters of several documents and chains through copies occur.

Legend: n documents of the range, P signature entries.
"""

from __future__ import annotations

import numpy as np

from superlab.data.dedup.minhash import _fmix64

_U64 = np.uint64
_EDIT_RATES = np.asarray([5, 10, 20, 40], dtype=np.uint64)  # percent of entries redrawn


def _hash(x: np.ndarray, salt: int) -> np.ndarray:
    return _fmix64((x ^ _U64(salt)) * _U64(0x9E3779B97F4A7C15))


def _is_copy(idx_n: np.ndarray, seed: int, copy_rate: float) -> np.ndarray:
    """Whether each document is a copy (document 0 never is)."""
    u = (_hash(idx_n.astype(np.uint64), seed * 7 + 1) >> _U64(11)).astype(np.float64) / 2.0**53
    return (u < copy_rate) & (idx_n > 0)


def _base_of(idx_n: np.ndarray, seed: int, copy_rate: float, window: int) -> np.ndarray:
    """The base each copy names: an earlier document that is not a copy itself."""
    h = _hash(idx_n.astype(np.uint64), seed * 7 + 2)
    span = np.minimum(idx_n, window).astype(np.uint64)
    base = idx_n - 1 - (h % np.maximum(span, _U64(1))).astype(np.int64)
    while (todo := _is_copy(base, seed, copy_rate)).any():
        base[todo] -= 1  # step back to the nearest base (document 0 is one)
    return base


def synthetic_signatures(
    lo: int,
    hi: int,
    n_perm: int,
    seed: int = 0,
    copy_rate: float = 0.1,
    window: int = 100_000,
) -> np.ndarray:
    """The uint32 signatures ``(hi - lo, n_perm)`` of documents ``lo..hi-1`` of the corpus."""
    idx_n = np.arange(lo, hi, dtype=np.int64)
    copy_n = _is_copy(idx_n, seed, copy_rate)
    src_n = idx_n.copy()
    src_n[copy_n] = _base_of(idx_n[copy_n], seed, copy_rate, window)
    perm_P = np.arange(n_perm, dtype=np.uint64)
    cell_nP = src_n.astype(np.uint64)[:, None] * _U64(n_perm) + perm_P[None, :]
    sig_nP = (_hash(cell_nP, seed * 7 + 3) >> _U64(32)).astype(np.uint32)
    own_nP = idx_n.astype(np.uint64)[:, None] * _U64(n_perm) + perm_P[None, :]
    rate_n = _EDIT_RATES[_hash(idx_n.astype(np.uint64), seed * 7 + 4) % _U64(len(_EDIT_RATES))]
    redraw_nP = copy_n[:, None] & (_hash(own_nP, seed * 7 + 5) % _U64(100) < rate_n[:, None])
    sig_nP[redraw_nP] = (_hash(own_nP[redraw_nP], seed * 7 + 6) >> _U64(32)).astype(np.uint32)
    return sig_nP
