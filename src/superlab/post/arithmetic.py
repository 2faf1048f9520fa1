"""On-policy preference pairs from a verifiable task: sums of two numbers.

Each item asks ``What is a + b?``; the starting model (the SFT checkpoint, as a rule)
answers it once by sampling (temperature 1, a seed per item, through ``serve``'s engine).
A wrong answer makes a pair: the prompt, ``chosen`` the right answer, ``rejected`` the
model's own sample. Right and empty answers make none and are counted. The pairs are
written once to ``<run>/pref/arithmetic.jsonl`` in TRL's format (with ``arithmetic.json``,
the counts) and read like any other pair file; a resumed stage reuses the file.

For SFT (``sft.generate: arithmetic``) the same items, answered right, are written as
conversational rows to ``<run>/sft/arithmetic.jsonl`` (another seed, so the preference
stage's items are mostly new to the model).
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import torch

from superlab.common.atomic import atomic_write_json, atomic_write_text
from superlab.config.post import PrefConfig
from superlab.data.chat import REPLY_STOPS, render_chat
from superlab.post.start import Start
from superlab.serve.generate import Generator
from superlab.serve.sampling import SamplingParams

MAX_ANSWER_TOKENS = 8


def items(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (question, answer) items, the same for the same seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(0, 49), rng.randint(0, 49)
        out.append((f"What is {a} + {b}?", str(a + b)))
    return out


def sample_answers(
    start: Start, questions: list[str], device: torch.device, seed: int
) -> list[str]:
    """The model's sampled answer to each question (its text, special tokens left out)."""
    model = start.load().to(device).eval()
    gen = Generator(model, start.tokenizer, start.model_cfg.max_seq_len)
    prompts = [
        render_chat([{"role": "user", "content": q}], add_generation_prompt=True) for q in questions
    ]
    params = [
        SamplingParams(
            max_tokens=MAX_ANSWER_TOKENS, temperature=1.0, seed=seed + i, stop=REPLY_STOPS
        )
        for i in range(len(questions))
    ]
    return [c.text.strip() for c in gen.generate_many(prompts, params)]


def write_pairs(
    start: Start, cfg: PrefConfig, workdir: Path, device: torch.device, main: bool
) -> Path:
    """``workdir/arithmetic.jsonl`` (made once); other ranks get a private copy."""
    path = workdir / "arithmetic.jsonl"
    if path.is_file():
        return path
    seed = cfg.train.seed
    task = items(cfg.generate_pairs, seed)
    answers = sample_answers(start, [q for q, _ in task], device, seed)
    rows, right, empty = [], 0, 0
    for (q, a), sample in zip(task, answers, strict=True):
        if not sample:
            empty += 1
        elif sample == a:
            right += 1
        else:
            rows.append({"prompt": q, "chosen": a, "rejected": sample})
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if not main:
        path = Path(tempfile.mkdtemp()) / "arithmetic.jsonl"
    atomic_write_text(path, text)
    if main:
        counts = {"items": len(task), "pairs": len(rows), "right": right, "empty": empty}
        atomic_write_json(workdir / "arithmetic.json", {**counts, "source": start.source})
    return path


def write_sft_rows(n: int, seed: int, workdir: Path) -> Path:
    """``workdir/arithmetic.jsonl``: ``n`` conversations asking a sum and answering it."""
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in items(n, seed + 1)
    ]
    path = workdir / "arithmetic.jsonl"
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return path
