"""Tiny pre-trained runs for the post-training tests: a BPE tokenizer and a random model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from superlab.common import RunDir, atomic_write_json
from superlab.config.recipe import ModelConfig, Recipe, TokenizerConfig
from superlab.data.tokenizer import train_tokenizer
from superlab.model.io import save_model
from superlab.model.transformer import Transformer

TEXTS = [
    "What is 2 + 3? The answer is 5.",
    "Say hello. Hello there, friend!",
    "Name a colour: blue, red, green or yellow.",
    "Count to four: one, two, three, four.",
] * 20

MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "max_seq_len": 64}


def chat_rows(n: int = 24) -> list[dict[str, Any]]:
    """Small conversations in TRL's conversational format."""
    rows = []
    for i in range(n):
        a, b = i % 7, (i * 3) % 5
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {"role": "assistant", "content": f"{a + b}"},
                ]
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_pretrained(root: Path, seed: int = 0) -> RunDir:
    """A run directory with a tokenizer and one pre-training checkpoint (random weights)."""
    run = RunDir(root)
    run.tokenizer_dir.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(iter(TEXTS), TokenizerConfig(vocab_size=300), run.tokenizer)
    cfg = ModelConfig.model_validate({**MODEL, "vocab_size": tok.get_vocab_size()})
    torch.manual_seed(seed)
    save_model(Transformer(cfg), run.ckpt / "step-10")
    atomic_write_json(run.ckpt / "step-10" / "state.json", {"step": 10})
    return run


# The post-training loop of the tests: 8 short steps, a checkpoint and a held-out pass at 4.
LOOP = {
    "steps": 8,
    "batch_size": 4,
    "seq_len": 48,
    "lr": 3e-3,
    "warmup_steps": 2,
    "log_every": 1,
    "eval_every": 4,
    "eval_batches": 1,
    "ckpt_every": 4,
    "device": "cpu",
    "precision": "fp32",
    "tensorboard": False,
}


def sft_recipe(data: list[str], sft: dict[str, Any] | None = None, **train: Any) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "tiny",
            "model": MODEL,
            "train": {"seq_len": 64},
            "sft": {
                "data": data,
                "heldout_every": 6,
                **(sft or {}),
                "train": {**LOOP, **train},
            },
        }
    )


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pref_rows(n: int = 24) -> list[dict[str, Any]]:
    """Preference pairs in TRL's text format: the right sum chosen, a wrong one rejected."""
    return [
        {"prompt": f"What is {i % 7} + {i % 5}?", "chosen": f"{i % 7 + i % 5}", "rejected": f"{i}9"}
        for i in range(n)
    ]


def pref_recipe(
    data: list[str], loss: str = "dpo", pref: dict[str, Any] | None = None, **train: Any
) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "tiny",
            "model": MODEL,
            "train": {"seq_len": 64},
            "pref": {
                "init": "run",
                "data": data,
                "loss": loss,
                "beta": 0.5,
                "heldout_every": 6,
                **(pref or {}),
                "train": {**LOOP, **train},
            },
        }
    )
