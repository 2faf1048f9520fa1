"""Helpers for the data tests: English-like text, JSONL files, a StageContext."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from superlab.common import RunDir, StageContext
from superlab.config import Recipe

SYLLABLES = ["ka", "to", "ri", "mel", "san", "dor", "vi", "len", "pa", "gro", "shu", "ne", "bal"]
STOP_WORDS = ["the", "of", "and", "to", "with", "that", "have", "be"]
_VOCAB_RNG = random.Random(1234)
VOCAB = sorted(
    {
        "".join(_VOCAB_RNG.choice(SYLLABLES) for _ in range(_VOCAB_RNG.randint(2, 3)))
        for _ in range(600)
    }
)


def sentence(rng: random.Random, stop_rate: float = 0.3) -> str:
    """One sentence of 8-14 words, about ``stop_rate`` of them English stop words."""
    words = [
        rng.choice(STOP_WORDS) if rng.random() < stop_rate else rng.choice(VOCAB)
        for _ in range(rng.randint(8, 14))
    ]
    return " ".join(words).capitalize() + "."


def english(seed: int | str, paragraphs: int = 3, stop_rate: float = 0.3) -> str:
    """A page that passes every Gopher and C4 rule: paragraphs of 2-4 sentences, one per line."""
    rng = random.Random(f"english:{seed}")
    return "\n".join(
        " ".join(sentence(rng, stop_rate) for _ in range(rng.randint(2, 4)))
        for _ in range(paragraphs)
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` as JSON lines to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def make_ctx(tmp_path: Path, paths: list[Path], **data: Any) -> StageContext:
    """A StageContext for a jsonl source, tokenizer vocab 300, run dir ``tmp_path/run``."""
    recipe = Recipe.model_validate(
        {
            "name": "t",
            "data": {"source": {"kind": "jsonl", "paths": [str(p) for p in paths]}, **data},
            "tokenizer": {"vocab_size": 300},
        }
    )
    return StageContext(recipe=recipe, run=RunDir(tmp_path / "run"))
