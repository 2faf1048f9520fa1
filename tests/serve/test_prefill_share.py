"""The prefill time share: while sequences decode, a step prefills only as many prompt
tokens as take about ``prefill_share`` times the decode forwards' time."""

from __future__ import annotations

import itertools
import time

import pytest
import torch

from superlab.serve.engine import Engine, GenRequest

from .test_engine import run
from .test_engine_paged import _Ids, _model, _prompt, _sampled


def test_the_budget_follows_the_measured_times() -> None:
    engine = Engine(_model(), _Ids(), 64, kv_block_size=4, prefill_tokens=64)  # type: ignore[arg-type]
    assert engine.prefill_share == 0.5
    assert engine._prefill_budget(decoding=0) == 64  # nothing decodes: the whole budget
    assert engine._prefill_budget(decoding=2) == 64  # no decode time measured yet
    engine._decode_s = 0.010
    assert engine._prefill_budget(decoding=2) == 4  # prefill not measured: one block
    engine._prefill_s_per_token = 0.0001  # 0.5 * 10 ms / 0.1 ms = 50 tokens
    assert engine._prefill_budget(decoding=2) == 50
    # more requests wait than decode: each gets the same time, share 6 / 2 = 3, not 0.5
    assert engine._prefill_budget(decoding=2, waiting=6) == 64  # 3 * 10 ms / 0.1 ms = 300
    engine._prefill_s_per_token = 0.001
    assert engine._prefill_budget(decoding=2, waiting=1) == 5  # 0.5 * 10 ms / 1 ms
    assert engine._prefill_budget(decoding=2, waiting=6) == 30  # 3 * 10 ms / 1 ms
    engine._prefill_s_per_token = 0.01  # 0.5 tokens' worth: at least one block
    assert engine._prefill_budget(decoding=2) == 4
    engine._prefill_s_per_token = 1e-7  # never past prefill_tokens
    assert engine._prefill_budget(decoding=2) == 64
    engine.prefill_share = None
    assert engine._prefill_budget(decoding=2) == 64
    with pytest.raises(ValueError, match="prefill_share"):
        Engine(_model(), _Ids(), 64, prefill_share=0)  # type: ignore[arg-type]


class _CostsPerToken(torch.nn.Module):
    """The model, plus 2 ms of waiting per token a forward computes: prefill is dear."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.cfg = model, model.cfg

    def forward(self, idx_BT, cache=None, valid_BT=None, **kw):  # type: ignore[no-untyped-def]
        n = int(valid_BT.sum()) if valid_BT is not None else idx_BT.numel()
        time.sleep(0.002 * n)
        return self.inner(idx_BT, cache=cache, valid_BT=valid_BT, **kw)

    def new_paged_cache(self, *a, **kw):  # type: ignore[no-untyped-def]
        return self.inner.new_paged_cache(*a, **kw)


def _while_two_decode(
    model: torch.nn.Module, late: list[GenRequest], share: float | None = 0.5
) -> list[int]:
    """Two rows decode (about 4 ms a step with ``_CostsPerToken``); ``late`` arrive once
    their decode time is measured. The prompt tokens of each step that also decoded;
    every request's output is checked equal to it run alone."""
    short = [GenRequest(f"s{i}", _prompt(i, 4), _sampled(i, 30)) for i in range(2)]
    engine = Engine(
        _CostsPerToken(model), _Ids(), 64, kv_block_size=4, prefill_tokens=64,
        prefill_share=share,
    )  # type: ignore[arg-type]  # fmt: skip
    got: dict[str, list[int]] = {r.id: [] for r in [*short, *late]}
    sizes = []
    for r in short:
        engine.submit(r)
    for step in itertools.count():
        if step == 3:
            for r in late:
                engine.submit(r)
        elif step > 3 and engine.idle:
            break
        for d in engine.step():
            got[d.request_id] += d.token_ids
        stats = engine.stats()
        if step >= 3 and stats["prefill_tokens_last_step"] and stats["decode_tokens_last_step"]:
            sizes.append(stats["prefill_tokens_last_step"])
    for r in [*short, *late]:
        assert got[r.id] == run(Engine(model, _Ids(), 64), [r])[r.id]  # type: ignore[arg-type]
    return sizes


def test_a_long_prompt_is_prefilled_in_small_chunks_while_others_decode() -> None:
    """A 48-token prompt arrives: with the share, each step prefills about 0.5 * 4 ms / 2 ms
    = 1 token's worth, so one block (4); without it, the whole prompt at once."""
    model = _model("full")
    long = GenRequest("long", _prompt(9, 48), _sampled(9, 3))
    for share, most in ((0.5, 4), (None, 48)):
        sizes = _while_two_decode(model, [long], share)
        assert max(sizes) == most, (share, sizes)


def test_a_burst_of_arrivals_gets_the_time_its_requests_share() -> None:
    """Eight 12-token prompts arrive at once: eight wait against two decoding, so prefill
    gets about 8 / 2 = 4 times the decode time, not 0.5: steps prefill more than the one
    block a lone long prompt gets."""
    burst = [GenRequest(f"b{i}", _prompt(20 + i, 12), _sampled(20 + i, 3)) for i in range(8)]
    sizes = _while_two_decode(_model("full"), burst)
    assert max(sizes) > 4, sizes
