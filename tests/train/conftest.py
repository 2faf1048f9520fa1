"""Tiny runs for the trainer's tests: shards written in the data contract's format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from superlab.common import RunDir
from superlab.config.recipe import Recipe

VOCAB = 64
EOS = 0


def write_shards(root: Path, splits: dict[str, list[int]], seed: int = 0) -> np.ndarray:
    """Write random-token documents, ``splits[name]`` = token count of each shard."""
    rng = np.random.default_rng(seed)
    shards_dir = root / "data" / "shards"
    shards_dir.mkdir(parents=True)
    index = {"dtype": "uint16", "vocab_size": VOCAB, "eos_id": EOS, "splits": {}}
    streams = {}
    for split, sizes in splits.items():
        entries, parts = [], []
        for n, size in enumerate(sizes):
            tokens = rng.integers(1, VOCAB, size=size).astype("<u2")
            starts = np.arange(0, size, 10, dtype=np.int64)  # a document every 10 tokens
            tokens[starts[1:] - 1] = EOS
            tokens[-1] = EOS
            name = f"{split}-{n:05d}"
            tokens.tofile(shards_dir / f"{name}.bin")
            np.save(shards_dir / f"{name}.docs.npy", starts)
            entries.append(
                {
                    "file": f"{name}.bin",
                    "docs_file": f"{name}.docs.npy",
                    "tokens": size,
                    "docs": len(starts),
                    "text_bytes": size * 3,
                }
            )
            parts.append(tokens)
        index["splits"][split] = entries
        streams[split] = np.concatenate(parts) if parts else np.empty(0, "<u2")
    (shards_dir / "index.json").write_text(json.dumps(index))
    return streams


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread, and the shared machine has two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    write_shards(tmp_path, {"train": [3000, 2000], "heldout": [700]})
    return RunDir(tmp_path)


def tiny_recipe(**train: object) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "tiny",
            "model": {
                "d_model": 32,
                "n_layers": 2,
                "n_heads": 4,
                "n_kv_heads": 2,
                "max_seq_len": 32,
                "moe": {"num_experts": 4, "top_k": 2, "every": 2},
            },
            "train": {
                "steps": 12,
                "batch_size": 4,
                "seq_len": 32,
                "lr": 3e-3,
                "warmup_steps": 3,
                "log_every": 1,
                "eval_every": 5,
                "eval_batches": 2,
                "ckpt_every": 4,
                "keep_last": 2,
                "device": "cpu",
                **train,
            },
        }
    )
