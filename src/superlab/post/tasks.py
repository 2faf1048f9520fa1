"""A verifiable task a few-million-parameter model can partly learn on a CPU: sums.

An item asks ``What is a + b?`` or ``What is a - b?`` (two-digit numbers, ``a >= b`` for a
difference) and its answer is written in a tag: ``<answer>85</answer>``. Splits come from
different seeds: ``train`` (RL prompts), ``sft`` (SFT conversations), ``pretrain``
(documents mixed into pre-training) and ``heldout`` (pass@k). Every split but held-out
drops the items whose question is a held-out question, so the held-out items are new to
the model; ``split_items`` counts what it dropped and ``check_disjoint`` asserts it.

``python -m superlab.post.tasks DIR`` writes the shipped files ``recipes/data/``:
``sums-pretrain.jsonl`` (``{"id", "text"}`` documents) and ``sums-sft.jsonl`` (TRL's
conversational rows).
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from superlab.common.atomic import atomic_write_text

SEEDS = {"train": 11, "sft": 12, "pretrain": 13, "heldout": 14}
LOW, HIGH = 10, 99  # two-digit operands
HELDOUT_ITEMS = 512  # the held-out pool (pass@k takes its first eval_items)


@dataclass(frozen=True)
class Item:
    """One question, its answer (digits, no tag) and the id rewards and logs name it by."""

    id: str
    question: str
    answer: str

    def row(self) -> dict[str, str]:
        """The item as an RL prompt row (TRL's text format plus the answer column)."""
        return {"id": self.id, "prompt": self.question, "answer": self.answer}


def tagged(answer: str, tag: str = "answer") -> str:
    return f"<{tag}>{answer}</{tag}>"


def _draw(n: int, seed: int, split: str) -> list[Item]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
        if rng.random() < 0.5:
            q, ans = f"What is {a} + {b}?", a + b
        else:
            a, b = max(a, b), min(a, b)
            q, ans = f"What is {a} - {b}?", a - b
        out.append(Item(f"sums-{split}-{i}", q, str(ans)))
    return out


def heldout_items(n: int = HELDOUT_ITEMS) -> list[Item]:
    """The held-out items (their own seed); the first ``n``."""
    return _draw(n, SEEDS["heldout"], "heldout")


def split_items(split: str, n: int) -> tuple[list[Item], int]:
    """``n`` items of ``split`` drawn, less those asking a held-out question; and how many
    were dropped for that reason."""
    held = {it.question for it in heldout_items()}
    drawn = _draw(n, SEEDS[split], split)
    kept = [it for it in drawn if it.question not in held]
    return kept, len(drawn) - len(kept)


def check_disjoint(items: list[Item], heldout: list[Item]) -> None:
    """Raise ``ValueError`` naming a question found in both."""
    both = {it.question for it in items} & {it.question for it in heldout}
    if both:
        raise ValueError(f"{len(both)} questions in both splits, e.g. {sorted(both)[0]!r}")


def pretrain_docs(n_docs: int, per_doc: int = 24) -> list[dict[str, str]]:
    """Documents of ``per_doc`` answered questions each, one per line."""
    items, _ = split_items("pretrain", n_docs * per_doc)
    return [
        {
            "id": f"sums-pretrain-doc-{d}",
            "text": "\n".join(
                f"{it.question} {tagged(it.answer)}"
                for it in items[d * per_doc : (d + 1) * per_doc]
            ),
        }
        for d in range((len(items) + per_doc - 1) // per_doc)
    ]


def sft_rows(n: int) -> list[dict[str, object]]:
    """Conversations asking a sum and answering it in the tag."""
    items, _ = split_items("sft", n)
    return [
        {
            "id": it.id,
            "messages": [
                {"role": "user", "content": it.question},
                {"role": "assistant", "content": tagged(it.answer)},
            ],
        }
        for it in items
    ]


def _jsonl(rows: list[dict[str, object]] | list[dict[str, str]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def main(argv: list[str]) -> None:
    """Write the shipped task files into ``argv[0]``."""
    out = Path(argv[0] if argv else "recipes/data")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sums-pretrain.jsonl", _jsonl(pretrain_docs(400)))
    atomic_write_text(out / "sums-sft.jsonl", _jsonl(sft_rows(4000)))


if __name__ == "__main__":
    main(sys.argv[1:])
