"""A mixture's evaluation per source: held-out loss and bits per byte, shares and epochs.

For each source tagged in the shard index (``data.sources``): the held-out loss and bits
per byte of that source's held-out shards alone (``perplexity``), the planned share of
training windows (its weight over the sum of weights), the realised share and the epochs
of its train tokens used (from the checkpoint's data position, ``MixtureLoader.state``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superlab.config import Recipe
from superlab.eval.perplexity import perplexity


def source_names(shards: Path) -> list[str]:
    """The sources tagged in the shard index, in listed order (empty for one source)."""
    index = json.loads((shards / "index.json").read_text())
    return list(index.get("sources", []))


def source_stream(shards: Path, source: str, split: str = "heldout") -> tuple[np.ndarray, int]:
    """One source's tokens of ``split`` as one array, and their text bytes."""
    index = json.loads((shards / "index.json").read_text())
    entries = [e for e in index["splits"].get(split, []) if e.get("source") == source]
    if not entries:
        return np.zeros(0, dtype=np.int64), 0
    parts = [np.memmap(shards / e["file"], dtype=index["dtype"], mode="r") for e in entries]
    return np.concatenate(parts).astype(np.int64), sum(int(e["text_bytes"]) for e in entries)


def heldout_by_source(
    model: torch.nn.Module, shards: Path, seq_len: int, max_batches: int | None
) -> dict[str, Any]:
    """Held-out loss and bits per byte of each source (None where it has too few tokens)."""
    out: dict[str, Any] = {}
    for name in source_names(shards):
        tokens, text_bytes = source_stream(shards, name)
        if len(tokens) < 2:
            out[name] = None
            continue
        window = min(seq_len, len(tokens) - 1)
        out[name] = perplexity(model, tokens, text_bytes, window, 8, max_batches)
    return out


def mixture_usage(recipe: Recipe, state: dict[str, Any]) -> dict[str, Any]:
    """Per source: weight, planned and realised share of training windows, epochs used."""
    weights = {s.name: s.weight for s in recipe.data.sources}
    total = sum(weights.values())
    pos = (state.get("loader") or {}).get("sources", {})
    drawn = {n: p["epoch"] * p["windows"] + p["index"] for n, p in pos.items()}
    all_drawn = sum(drawn.values()) or 1
    return {
        name: {
            "weight": w,
            "planned_share": w / total,
            "realised_share": drawn.get(name, 0) / all_drawn,
            "windows": drawn.get(name, 0),
            "tokens": drawn.get(name, 0) * recipe.train.seq_len,
            "epochs": drawn[name] / pos[name]["windows"] if name in drawn else 0.0,
            "max_epochs": recipe.data.source_named(name).max_epochs,
        }
        for name, w in weights.items()
    }
