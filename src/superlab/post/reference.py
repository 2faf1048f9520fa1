"""Reference log-probabilities: computed once, cached in the run directory, reused each epoch.

``<run>/pref/reference/`` holds ``meta.json`` (which reference, which pairs) and one
``chunk-NNNNN.npy`` per ``CHUNK`` pairs: for each pair its chosen and rejected summed
log-probabilities and target counts (float64, shape (n, 4)). Chunks are written
atomically as they are computed, so an interrupted computation resumes at the first
missing chunk; a cache whose ``meta.json`` names another reference or other pairs is
cleared and recomputed. The reference runs in fp32, in eval mode, without gradients.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superlab.common.atomic import atomic_write_bytes, atomic_write_json
from superlab.model.transformer import Transformer
from superlab.post.pref_data import Pair, pair_batch, sequence_logps

CHUNK = 64
META = "meta.json"


def fingerprint(pairs: list[Pair]) -> str:
    """SHA-256 of every pair's ids and targets, in order."""
    h = hashlib.sha256()
    for p in pairs:
        for ex in (p.chosen, p.rejected):
            h.update(ex.ids.tobytes())
            h.update(np.packbits(ex.target).tobytes())
            h.update(b"|")
    return h.hexdigest()


def _chunk(path: Path, i: int) -> Path:
    return path / f"chunk-{i:05d}.npy"


def reference_logps(
    load: Callable[[], Transformer],
    source: str,
    pairs: list[Pair],
    cache: Path,
    *,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    write: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(len(pairs), 4) table [chosen sum, rejected sum, chosen count, rejected count] and
    how many pairs were computed now and how many read from the cache."""
    meta = {"reference": source, "pairs": len(pairs), "chunk": CHUNK, "sha256": fingerprint(pairs)}
    meta_path = cache / META
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta and write:
        shutil.rmtree(cache)
    if write and not meta_path.is_file():
        atomic_write_json(meta_path, meta)
    parts, computed, cached = [], 0, 0
    model: Transformer | None = None
    for i, lo in enumerate(range(0, len(pairs), CHUNK)):
        chunk = pairs[lo : lo + CHUNK]
        path = _chunk(cache, i)
        if path.is_file() and meta_path.is_file():
            parts.append(np.load(path))
            cached += len(chunk)
            continue
        if model is None:
            model = load().to(device).eval()
        table = _compute(model, chunk, batch_size, pad_id, device)
        if write:
            buf = io.BytesIO()
            np.save(buf, table)
            atomic_write_bytes(path, buf.getvalue())
        parts.append(table)
        computed += len(chunk)
    table = np.concatenate(parts) if parts else np.zeros((0, 4))
    return table, {"computed": computed, "cached": cached}


@torch.no_grad()
def _compute(
    model: Transformer, pairs: list[Pair], batch_size: int, pad_id: int, device: torch.device
) -> np.ndarray:
    rows = []
    for lo in range(0, len(pairs), batch_size):
        batch = pairs[lo : lo + batch_size]
        x_BT, y_BT = pair_batch(batch, pad_id)
        logits = model(x_BT.to(device)).logits_BTV
        sums, counts = sequence_logps(logits, y_BT.to(device))
        p = len(batch)
        rows.append(
            torch.stack([sums[:p], sums[p:], counts[:p].double(), counts[p:].double()], 1)
            .double()
            .cpu()
            .numpy()
        )
    return np.concatenate(rows)
