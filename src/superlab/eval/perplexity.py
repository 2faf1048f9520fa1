"""Perplexity and bits per byte on the held-out split of the packed shards.

Bits per byte = total nats / ln 2 / UTF-8 bytes of the text scored, so models
with different tokenizers can be compared (as in The Pile, Gao et al. 2020).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def heldout_stream(shards: Path, split: str = "heldout") -> tuple[np.ndarray, int]:
    """The split's tokens as one array (memory-mapped pieces concatenated) and its text bytes."""
    index = json.loads((shards / "index.json").read_text())
    entries = index["splits"].get(split) or []
    if not entries:
        raise ValueError(f"{shards / 'index.json'}: split '{split}' has no shards")
    parts = [np.memmap(shards / e["file"], dtype=index["dtype"], mode="r") for e in entries]
    return np.concatenate(parts).astype(np.int64), sum(int(e["text_bytes"]) for e in entries)


@torch.no_grad()
def perplexity(
    model: torch.nn.Module,
    tokens: np.ndarray,
    text_bytes: int,
    seq_len: int,
    batch_size: int = 8,
    max_batches: int | None = None,
) -> dict[str, Any]:
    """Score non-overlapping windows of ``seq_len`` next-token predictions.

    When ``max_batches`` cuts the split short, bytes are prorated by the split's
    average bytes per token and ``bpb_estimated`` is true.
    """
    n_windows = (len(tokens) - 1) // seq_len
    if n_windows == 0:
        raise ValueError(f"held-out split has {len(tokens)} tokens, fewer than seq_len+1")
    capped = max_batches is not None and max_batches * batch_size < n_windows
    if capped:
        n_windows = max_batches * batch_size  # type: ignore[operator]
    device = next(model.parameters()).device
    model.eval()
    total_nats, scored = 0.0, 0
    batches = [
        np.stack([tokens[r * seq_len : r * seq_len + seq_len + 1] for r in rows])
        for rows in (
            range(s, min(s + batch_size, n_windows)) for s in range(0, n_windows, batch_size)
        )
    ]
    tail = tokens[n_windows * seq_len :]
    if not capped and len(tail) > 1:  # the last, shorter window: score every target once
        batches.append(tail[None, :])
    for chunk in batches:
        x_BT = torch.from_numpy(chunk[:, :-1]).to(device)
        y_BT = torch.from_numpy(chunk[:, 1:]).to(device)
        logits_BTV = model(x_BT).logits_BTV.float()
        nats = F.cross_entropy(logits_BTV.flatten(0, 1), y_BT.flatten(), reduction="sum")
        total_nats += float(nats)
        scored += y_BT.numel()
    covered = scored / max(len(tokens) - 1, 1)
    scored_bytes = text_bytes * covered
    loss = total_nats / scored
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "bits_per_byte": total_nats / math.log(2) / max(scored_bytes, 1.0),
        "bpb_estimated": capped,
        "tokens_scored": scored,
    }
