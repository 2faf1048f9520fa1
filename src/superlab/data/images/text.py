"""Token ids for the image task: a character vocabulary and the image placeholders.

A question row becomes ``<image_start> <image>*P <image_end> q: <question> a: <answer>
<eos>``; with ``image=False`` (the text-only control) the image's tokens are left out and
the text is the same. Only the answer and ``<eos>`` are targets: the score is whether the
model's greedy answer is exactly right, and with teacher forcing that is whether every
target position's argmax is right (``exact_match``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAD, EOS, IMAGE_START, IMAGE, IMAGE_END = 0, 1, 2, 3, 4
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 ?:'"
VOCAB = 5 + len(CHARS)
_ID = {c: 5 + i for i, c in enumerate(CHARS)}


def encode(text: str) -> list[int]:
    """Character ids of ``text``; refuses a character outside ``CHARS``."""
    try:
        return [_ID[c] for c in text.lower()]
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the image task's vocabulary") from None


def decode(ids: list[int]) -> str:
    """Text of character ids (special ids dropped)."""
    return "".join(CHARS[i - 5] for i in ids if i >= 5)


def example(
    row: dict[str, Any], tokens_per_image: int, image: bool = True
) -> tuple[list[int], list[int]]:
    """(input ids, targets) of one row; targets are -100 except on the answer and ``<eos>``."""
    head = [IMAGE_START, *[IMAGE] * tokens_per_image, IMAGE_END] if image else []
    prompt = head + encode(f"q: {row['question']} a: ")
    answer = [*encode(row["answer"]), EOS]
    ids = prompt + answer
    targets = [-100] * (len(prompt) - 1) + answer + [-100]
    return ids, targets


def batch(
    rows: list[dict[str, Any]], tokens_per_image: int, image: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(B, T) inputs and targets of ``rows``, right-padded with ``PAD`` / -100."""
    pairs = [example(r, tokens_per_image, image) for r in rows]
    T = max(len(ids) for ids, _ in pairs)
    x = np.full((len(rows), T), PAD, dtype=np.int64)
    y = np.full((len(rows), T), -100, dtype=np.int64)
    for b, (ids, tg) in enumerate(pairs):
        x[b, : len(ids)], y[b, : len(tg)] = ids, tg
    return x, y
