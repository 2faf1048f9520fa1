"""Contamination audit: n-gram overlap of eval items with the train shards, and Min-K% prob.

N-grams are over **token ids** of the run's own tokenizer, so the index is built straight
from the packed shards (memory-mapped, never decoded) and an eval item is tokenized the
same way. Tokenizing an item on its own can change at most its first token (a word
without the leading space it has mid-document), which shifts no other n-gram. An n-gram
never spans two documents (a window holding EOS is skipped).

The index is one sorted array of unique uint64 n-gram hashes per train shard, written
to ``<run>/eval/ngrams-<n>/<shard>.npy`` (skipped when present, so rebuilding is
resumable), queried with ``searchsorted``. Hashing is n vectorised passes of a
multiply-add over the whole shard (no Python loop over n-grams) followed by
splitmix64's finaliser (Steele et al. 2014); with 64 bits a false match among 10^9
n-grams has probability about 10^-10 per query. Memory: 8 bytes per train token on
disk, about 24 per shard token while a shard is hashed.

An item is contaminated when at least ``min_overlap`` of its n-grams occur in the train
split; items with fewer than n tokens cannot be judged and are counted apart. The report
gives the score (accuracy) on clean and on contaminated items, so a gain that comes
from leaked items shows up. Min-K% probability (Shi et al. 2023, "Detecting Pretraining
Data from Large Language Models"): the mean log-probability of the k% least likely
tokens of the item under the model; seen text has fewer very unlikely tokens, which
catches paraphrased or reformatted leaks that exact n-grams miss.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from superlab.common import atomic_write_bytes
from superlab.eval.lm import Scorer

MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (the golden ratio's bits)
BLOCK = 1 << 24  # tokens hashed at a time: bounds memory on large shards


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` by sort and compare (numpy 2.4's ``unique`` is ~100x slower on uint64)."""
    a = np.sort(a)
    if len(a) == 0:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def ngram_hashes(ids_T: np.ndarray, n: int, eos: int | None = None) -> np.ndarray:
    """The uint64 hash of every n-gram of ``ids_T`` that holds no ``eos``, in order."""
    windows = len(ids_T) - n + 1
    if windows <= 0:
        return np.empty(0, dtype=np.uint64)
    x_T = ids_T.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        h = np.zeros(windows, dtype=np.uint64)
        for i in range(n):  # n passes over the array, one per position in the n-gram
            h = h * MULT + x_T[i : i + windows]
        h = _mix(h)
    if eos is not None:
        seen = np.concatenate([[0], np.cumsum(ids_T == eos)])
        h = h[seen[n:] - seen[:windows] == 0]
    return h


class NGramIndex:
    """The train split's n-grams: one sorted unique uint64 array per shard."""

    def __init__(self, files: list[Path], n: int) -> None:
        self.files, self.n = files, n

    @classmethod
    def build(cls, shards: Path, out_dir: Path, n: int, split: str = "train") -> NGramIndex:
        """Hash every shard of ``split`` not hashed yet into ``out_dir``."""
        index = json.loads((shards / "index.json").read_text())
        dtype, eos = np.dtype(index["dtype"]).newbyteorder("<"), int(index["eos_id"])
        files = []
        for entry in index["splits"].get(split) or []:
            out = out_dir / f"{Path(entry['file']).stem}.npy"
            files.append(out)
            if out.exists():
                continue
            ids_T = np.memmap(shards / entry["file"], dtype=dtype, mode="r")
            parts = [
                sorted_unique(ngram_hashes(np.asarray(ids_T[s : s + BLOCK + n - 1]), n, eos))
                for s in range(0, max(len(ids_T) - n + 1, 1), BLOCK)
            ]
            buf = io.BytesIO()
            np.save(buf, sorted_unique(np.concatenate(parts)))
            atomic_write_bytes(out, buf.getvalue())
        if not files:
            raise ValueError(f"{shards / 'index.json'}: split '{split}' has no shards to index")
        return cls(files, n)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """For each hash, whether some train shard holds it."""
        found = np.zeros(len(hashes), dtype=bool)
        for f in self.files:
            arr = np.load(f, mmap_mode="r")
            if len(arr) == 0 or len(hashes) == 0:
                continue
            at = np.minimum(np.searchsorted(arr, hashes), len(arr) - 1)
            found |= np.asarray(arr[at]) == hashes
        return found

    @property
    def size(self) -> int:
        """Unique n-grams summed over shards (a shared n-gram counts once per shard)."""
        return sum(len(np.load(f, mmap_mode="r")) for f in self.files)


@dataclass(frozen=True)
class AuditItem:
    """An eval item to audit: its id, the text a leak would contain, and its score."""

    id: str
    text: str
    score: float  # 1.0 / 0.0 for correct / wrong, or any per-item figure


def audit(
    index: NGramIndex,
    items: list[AuditItem],
    tokenizer: Tokenizer,
    min_overlap: float,
) -> dict[str, Any]:
    """Per-item overlap and flag, and the mean score on clean vs contaminated items."""
    rows, too_short = [], 0
    for it in items:
        ids = np.asarray(tokenizer.encode(it.text, add_special_tokens=False).ids, dtype=np.int64)
        hashes = ngram_hashes(ids, index.n)
        if len(hashes) == 0:
            too_short += 1
            rows.append({"id": it.id, "ngrams": 0, "overlap": None, "contaminated": None})
            continue
        hit = int(index.contains(hashes).sum())
        overlap = hit / len(hashes)
        rows.append(
            {
                "id": it.id,
                "ngrams": len(hashes),
                "found": hit,
                "overlap": overlap,
                "contaminated": overlap >= min_overlap,
                "score": it.score,
            }
        )
    judged = [r for r in rows if r["contaminated"] is not None]
    dirty = [r["score"] for r in judged if r["contaminated"]]
    clean = [r["score"] for r in judged if not r["contaminated"]]
    return {
        "ngram": index.n,
        "min_overlap": min_overlap,
        "items": len(items),
        "contaminated": len(dirty),
        "clean": len(clean),
        "too_short": too_short,
        "score_clean": float(np.mean(clean)) if clean else None,
        "score_contaminated": float(np.mean(dirty)) if dirty else None,
        "rows": rows,
    }


def min_k_prob(token_logprobs: np.ndarray, k_percent: float) -> float:
    """Mean of the ``k_percent``% lowest token log-probabilities (at least one token)."""
    if len(token_logprobs) == 0:
        raise ValueError("no tokens to score")
    k = max(1, math.ceil(len(token_logprobs) * k_percent / 100))
    return float(np.mean(np.sort(token_logprobs)[:k]))


def min_k_scores(scorer: Scorer, texts: list[str], k_percent: float) -> list[float]:
    """Min-K% probability of each text under the scorer's model (EOS + text)."""
    return [
        min_k_prob(scorer.token_logprobs([scorer.eos_id, *scorer.encode(t)]), k_percent)
        for t in texts
    ]
