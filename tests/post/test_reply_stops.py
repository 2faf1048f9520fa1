"""Sampled answers end at the reply's end: text after <|end|> is never part of an answer.

Decoding leaves special tokens out of the text, so without the chat stops a reply that ends
right and goes on ("29" <|end|> "<|user|>" "3...") would read "293..." and score wrong (and
make a wrong "rejected" answer for DPO).
"""

from __future__ import annotations

from typing import Any

import torch

from superlab.data.chat import END_OF_TURN, REPLY_STOPS
from superlab.post import arithmetic, evaluate
from superlab.post.start import resolve_start
from superlab.serve.generate import Completion, Generator

from .conftest import make_pretrained


def _capture(monkeypatch) -> list[Any]:
    seen: list[Any] = []

    def fake(self, prompts, params, **kw):
        seen.extend(params)
        return [Completion("x", [1], "stop") for _ in prompts]

    monkeypatch.setattr(Generator, "generate_many", fake)
    return seen


def test_pass_at_k_and_on_policy_pairs_sample_with_the_reply_stops(tmp_path, monkeypatch):
    run = make_pretrained(tmp_path)
    start = resolve_start("run", run, "test")
    seen = _capture(monkeypatch)
    evaluate.arithmetic_pass(start.load().eval(), start.tokenizer, 64, seed=0)
    arithmetic.sample_answers(start, ["What is 1 + 2?"], torch.device("cpu"), seed=0)
    assert seen and all(END_OF_TURN in p.stop for p in seen)
    assert all(set(REPLY_STOPS) <= set(p.stop) for p in seen)
