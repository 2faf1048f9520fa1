"""Held-out pass@1 (greedy) and pass@k (sampled) of a model on the ``rl`` stage's prompts.

An answer passes when the ``exact_match`` check holds: the text of its last answer tag
(``rl.answer_tag``) equals the row's ``rl.answer_field``. pass@1 is one greedy answer per
item; pass@k draws k answers at the recipe's temperature and top-p, and with n = k samples
the unbiased estimator of Chen et al. (2021) is whether any of them passes. Comparing the
two for the SFT and the RL checkpoints shows whether RL taught something new (pass@k
rises) or sharpened what was there (pass@1 rises toward the SFT model's pass@k).
"""

from __future__ import annotations

from typing import Any

import torch
from tokenizers import Tokenizer

from superlab.config.rl import RLConfig
from superlab.post.evaluate import pass_at_k
from superlab.post.rewards import builtin
from superlab.post.rl_data import Prompt
from superlab.post.rollout import sampled
from superlab.serve.generate import Generator
from superlab.serve.sampling import SamplingParams


def pass_rates(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    max_seq_len: int,
    items: list[Prompt],
    cfg: RLConfig,
    seed: int,
) -> dict[str, Any]:
    """``{"items", "samples", "pass@1", "pass@k"}`` of ``model`` on ``items``."""
    k = cfg.eval_samples
    check = builtin("exact_match", cfg.answer_field, cfg.answer_tag)
    was_training = model.training
    gen = Generator(model, tokenizer, max_seq_len)
    stop = tuple(cfg.stop)
    greedy = SamplingParams(max_tokens=cfg.max_new_tokens, temperature=0.0, stop=stop)
    texts, params = [], []
    for i, p in enumerate(items):
        texts.append(p.text)
        params.append(greedy)
        for s in range(k):
            texts.append(p.text)
            params.append(sampled(cfg, seed + i * 1009 + s))
    try:
        out = gen.generate_many(texts, params, max_batch=256)
    finally:
        model.train(was_training)
    first, right = 0, []
    for i, p in enumerate(items):
        group = out[i * (k + 1) : (i + 1) * (k + 1)]
        row = {cfg.answer_field: [p.row.get(cfg.answer_field, "")] * (k + 1)}
        ok = check([p.given] * (k + 1), [c.text for c in group], **row)
        first += int(ok[0])
        right.append(int(sum(ok[1:])))
    n = max(len(items), 1)
    return {
        "items": len(items),
        "samples": k,
        "pass@1": first / n,
        f"pass@{k}": sum(pass_at_k(k, c, k) for c in right) / n,
    }
