"""The ``rl`` tests' recipe and a TRL-signature reward module written where they can import it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from superlab.config.recipe import Recipe

from .conftest import MODEL

# TRL's signature: (prompts, completions, **kwargs) -> list[float]; kwargs are the row's
# other columns as lists. It rewards completions by length mod 3, so groups differ.
REWARDS_PY = """
def by_length(prompts, completions, **kwargs):
    assert len(kwargs["answer"]) == len(completions)
    return [float(len(c) % 3) for c in completions]

def boom(prompts, completions, **kwargs):
    if any("7" in p for p in prompts):
        raise ZeroDivisionError("no sevens")
    return [0.0] * len(completions)

def nan(prompts, completions, **kwargs):
    return [float("nan")] * len(completions)

def short(prompts, completions, **kwargs):
    return [1.0] * (len(completions) - 1)

def none(prompts, completions, **kwargs):
    return [None] * len(completions)

def a_count(prompts, completions, **kwargs):
    return [float(c.count("a")) for c in completions]

CALLS = []

def boom_third_call(prompts, completions, **kwargs):
    CALLS.append(1)
    if len(CALLS) == 3:
        raise ValueError("cannot score this sample")
    return [float(len(c) % 2) for c in completions]
"""


def reward_module(root: Path) -> Path:
    """``root/rl_test_rewards.py``; put ``root`` on the path to import it (afresh)."""
    (root / "rl_test_rewards.py").write_text(REWARDS_PY)
    sys.modules.pop("rl_test_rewards", None)
    return root


def rl_recipe(rl: dict[str, Any] | None = None, **train: Any) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "tiny",
            "model": MODEL,
            "train": {"seq_len": 64},
            "rl": {
                "init": "run",
                "task": "sums",
                "task_items": 64,
                "rewards": [
                    {"name": "rl_test_rewards:by_length", "weight": 1.0},
                    {"name": "format", "weight": 0.5},
                ],
                "group_size": 4,
                "max_new_tokens": 6,
                "eval_items": 4,
                "eval_samples": 2,
                **(rl or {}),
                "train": {
                    "steps": 6,
                    "batch_size": 2,
                    "seq_len": 64,
                    "lr": 3e-3,
                    "warmup_steps": 0,
                    "log_every": 1,
                    "ckpt_every": 2,
                    "device": "cpu",
                    "precision": "fp32",
                    "tensorboard": False,
                    **train,
                },
            },
        }
    )
