"""MinHash signatures of word n-gram shingles (Broder 1997), a whole batch of documents at a time.

Legend for array suffixes: D documents in a batch, T words (flat over the batch, with padding),
S shingles (flat over the batch), P = bands * rows hash functions ("permutations").

Hashing, in three layers:

1. each word is hashed once to 64 bits (xxh3, seeded);
2. an n-gram's 64-bit hash is ``fmix64(sum_k C_k * w_{i+k})`` over its word hashes (random odd
   ``C_k``; MurmurHash3's finalizer mixes the sum), computed with numpy slices, no Python loop;
   its top 32 bits are the shingle key ``x``;
3. the P functions are multiply-add-shift, ``h(x) = ((a*x + b) mod 2^64) >> 32`` with random
   64-bit ``a`` (odd), ``b``: strongly universal for 32-bit keys (Dietzfelbinger 1996; Thorup
   2015, "High speed hashing for integers and strings"), as is ``(a*x + b) mod (2^61 - 1)``,
   but with no 128-bit product or modulo: one multiply and one add per (shingle, function).
   The min over shingles is taken on the full 64-bit value and shifted once per entry.

Collisions of the 32-bit choice: two distinct shingles share a key with probability 2^-32, and
two different minima tie with probability about 2^-32 per signature entry, so at 112 entries a
spurious agreement shifts an estimated Jaccard by ~1e-8; a band (8 entries) of two unrelated
documents matches by accident with probability ~2^-256. Exact Jaccard (for verification) uses
the 64-bit n-gram hashes instead, where a collision among 1e5 shingles is ~1e-10 likely.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import xxhash

from superlab.config.recipe import MinHashConfig

_U64 = np.uint64
_NON_WORD = re.compile(r"[\W_]+")
# Every ASCII byte that is not [A-Za-z0-9] becomes a space: the regex's effect on ASCII, ~2x faster.
_ASCII_TO_SPACE = bytes.maketrans(
    bytes(b for b in range(128) if not chr(b).isalnum()),
    b" " * sum(1 for b in range(128) if not chr(b).isalnum()),
)
_CHUNK_SHINGLES = 8192  # (P, 8192) uint64 = 7 MiB: stays in L2/L3; measured 2.5x faster than 32k


def shingle_words(text: str) -> list[str]:
    """The words of ``text``: lowercased, punctuation and ``_`` removed, split on whitespace.

    The same normalisation as FineWeb's (datatrove ``simplify_text``: lowercase, punctuation to
    spaces, whitespace collapsed) minus its folding of digits and diacritics.
    """
    return _NON_WORD.sub(" ", text.lower()).split()


def _word_bytes(text: str) -> list[bytes]:
    """``[w.encode() for w in shingle_words(text)]``, faster: regex on non-ASCII words only."""
    words = text.lower().encode("utf-8").translate(_ASCII_TO_SPACE).split()
    if text.isascii():
        return words
    out: list[bytes] = []
    for w in words:
        if w.isascii():
            out.append(w)
        else:  # may hold non-ASCII punctuation or spaces ("a—b", "a\u00a0b")
            out.extend(p.encode("utf-8") for p in _NON_WORD.sub(" ", w.decode("utf-8")).split())
    return out


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (Appleby), in place on a uint64 array."""
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB93FE53B6A87)
    h ^= h >> _U64(33)
    return h


class MinHasher:
    """Computes ``(n_docs, bands * rows)`` uint32 MinHash signatures, seeded and deterministic.

    A document with fewer words than ``ngram`` has one shingle, all its words (an empty document
    has one shingle too, the empty one, so all empty documents share a signature); a
    document's signature never depends on the batch it is computed in.
    """

    def __init__(self, cfg: MinHashConfig) -> None:
        self.cfg = cfg
        self.n_perm = cfg.bands * cfg.rows
        rng = np.random.default_rng([cfg.seed, 0x5EED])
        u64 = np.iinfo(np.uint64).max
        self._word_seed = int(rng.integers(0, 2**63))
        self._c_n = rng.integers(0, u64, size=cfg.ngram, dtype=np.uint64, endpoint=True) | _U64(1)
        a_P = rng.integers(0, u64, size=self.n_perm, dtype=np.uint64, endpoint=True) | _U64(1)
        b_P = rng.integers(0, u64, size=self.n_perm, dtype=np.uint64, endpoint=True)
        self._a_P1, self._b_P1 = a_P[:, None], b_P[:, None]

    def _shingles(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """64-bit shingle hashes, flat over the batch (S,), and each document's count (D,)."""
        n = self.cfg.ngram
        words = [_word_bytes(t) for t in texts]
        len_D = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        hashes = map(
            xxhash.xxh3_64_intdigest,
            itertools.chain.from_iterable(words),
            itertools.repeat(self._word_seed),
        )
        w_flat = np.fromiter(hashes, dtype=np.uint64, count=int(len_D.sum()))
        # Each document's words followed by n zeros, so an n-gram sum never reads the next
        # document and a short document's single shingle is the sum over all its words.
        pad_D = np.arange(len(texts), dtype=np.int64) * n
        start_D = np.concatenate(([0], np.cumsum(len_D)[:-1])) + pad_D
        w_T = np.zeros(len(w_flat) + len(texts) * n, dtype=np.uint64)
        w_T[np.arange(len(w_flat)) + np.repeat(pad_D, len_D)] = w_flat
        n_T = len(w_T) - (n - 1)
        g_T = self._c_n[0] * w_T[:n_T]
        for k in range(1, n):
            g_T += self._c_n[k] * w_T[k : k + n_T]
        count_D = np.maximum(len_D - n + 1, 1)
        first_S = np.repeat(start_D - np.concatenate(([0], np.cumsum(count_D)[:-1])), count_D)
        return _fmix64(g_T[np.arange(int(count_D.sum())) + first_S]), count_D

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """The MinHash signature of each text: uint32 array (len(texts), bands * rows)."""
        out_DP = np.full((len(texts), self.n_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
        if not texts:
            return out_DP.astype(np.uint32)
        g_S, count_D = self._shingles(texts)
        x_S = g_S >> _U64(32)
        doc_S = np.repeat(np.arange(len(texts)), count_D)
        buf_PS = np.empty((self.n_perm, _CHUNK_SHINGLES), dtype=np.uint64)
        for lo in range(0, len(x_S), _CHUNK_SHINGLES):
            x_s, doc_s = x_S[lo : lo + _CHUNK_SHINGLES], doc_S[lo : lo + _CHUNK_SHINGLES]
            v_Ps = buf_PS[:, : len(x_s)]
            np.multiply(self._a_P1, x_s[None, :], out=v_Ps)
            v_Ps += self._b_P1
            # One segment per document piece in this chunk (a long document spans chunks).
            seg = np.flatnonzero(np.r_[True, doc_s[1:] != doc_s[:-1]])
            docs = doc_s[seg]
            piece_min_dP = np.minimum.reduceat(v_Ps, seg, axis=1).T
            out_DP[docs] = np.minimum(out_DP[docs], piece_min_dP)
        return (out_DP >> _U64(32)).astype(np.uint32)

    def shingle_set(self, text: str) -> np.ndarray:
        """The sorted unique 64-bit hashes of a text's word n-grams (for exact Jaccard)."""
        return np.unique(self._shingles([text])[0])


def jaccard(a_S: np.ndarray, b_S: np.ndarray) -> float:
    """Exact Jaccard of two sorted unique shingle-hash arrays (1.0 when both are empty)."""
    inter = len(np.intersect1d(a_S, b_S, assume_unique=True))
    union = len(a_S) + len(b_S) - inter
    return inter / union if union else 1.0
