"""What a post-training stage writes for ``eval``: ``<run>/<stage>/eval.json``.

The held-out loss of the stage's own objective (for SFT the chat loss on assistant tokens
only), and for the arithmetic task (when the stage used it) exact-match pass@1 and pass@k
on ``EVAL_ITEMS`` held-out items (their own seed): ``SAMPLES`` answers per item sampled at
temperature 1, pass@k by the unbiased estimator of Chen et al. 2021 (with n = k samples,
whether any of them is right). The ``eval`` stage copies these files into ``eval.json``.
"""

from __future__ import annotations

from math import comb
from pathlib import Path
from typing import Any

import torch

from superlab.common.atomic import atomic_write_json
from superlab.data.chat import REPLY_STOPS, render_chat
from superlab.serve.generate import Generator
from superlab.serve.sampling import SamplingParams

EVAL_ITEMS = 64
SAMPLES = 4
MAX_ANSWER_TOKENS = 8


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k of n samples (c of them right) is right."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def arithmetic_pass(
    model: torch.nn.Module, tokenizer: Any, max_seq_len: int, seed: int
) -> dict[str, Any]:
    """Exact-match pass@1 and pass@SAMPLES on held-out sums."""
    from superlab.post.arithmetic import items

    task = items(EVAL_ITEMS, seed + 7)
    gen = Generator(model, tokenizer, max_seq_len)
    prompts, params = [], []
    for i, (q, _) in enumerate(task):
        prompt = render_chat([{"role": "user", "content": q}], add_generation_prompt=True)
        for s in range(SAMPLES):
            prompts.append(prompt)
            params.append(
                SamplingParams(
                    max_tokens=MAX_ANSWER_TOKENS,
                    temperature=1.0,
                    seed=seed + i * 97 + s,
                    stop=REPLY_STOPS,  # the reply ends at its <|end|>
                )
            )
    answers = [c.text.strip() for c in gen.generate_many(prompts, params)]
    right = [
        sum(answers[i * SAMPLES + s] == a for s in range(SAMPLES)) for i, (_, a) in enumerate(task)
    ]
    return {
        "items": len(task),
        "samples": SAMPLES,
        "pass@1": sum(pass_at_k(SAMPLES, c, 1) for c in right) / len(task),
        f"pass@{SAMPLES}": sum(pass_at_k(SAMPLES, c, SAMPLES) for c in right) / len(task),
    }


def write_stage_eval(
    path: Path,
    summary: dict[str, Any],
    model: torch.nn.Module,
    tokenizer: Any,
    max_seq_len: int,
    task: bool,
    seed: int,
) -> dict[str, Any]:
    """Write ``path`` (the stage's eval.json) and return what it holds."""
    out: dict[str, Any] = {"step": summary["steps"], "heldout_loss": summary["heldout_loss"]}
    if task:
        was_training = model.training
        out["arithmetic"] = arithmetic_pass(model.eval(), tokenizer, max_seq_len, seed)
        model.train(was_training)
    atomic_write_json(path, out)
    return out
