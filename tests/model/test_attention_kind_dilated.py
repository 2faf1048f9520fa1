"""Worked example of a new attention kind, added from outside src/ (docs/architecture.md).

``dilated``: a sliding window of w positions in which a query sees every d-th key,
``s <= t``, ``t - s < w`` and ``(t - s) % d == 0`` (the dilated sliding window of Beltagy
et al. 2020, Longformer, section 3.1). w is ``model.attention.window``; d = ``DILATION``
is a constant of the kind. The kind is this one class plus ``register_kind``; nothing in
src/ names it, yet the recipe validates, the model trains, the cache decodes and stays
bounded, and the FLOP count follows.

It is registered by the ``dilated`` fixture and unregistered after each test, so it never
leaks into other tests (error messages that list kinds stay as they are).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from superlab.config.recipe import AttentionConfig, LayerSpec, ModelConfig
from superlab.model.attention import attention_mask
from superlab.model.attention_kinds import AttentionKind, register_kind, unregister_kind
from superlab.model.counts import flops_per_token, mean_context
from superlab.model.transformer import Transformer

DILATION = 2


class Dilated(AttentionKind):
    """Every DILATION-th key of a window of ``window`` positions (self included)."""

    name = "dilated"
    needs = ("window",)  # the recipe must set model.attention.window (config checks it)

    def visible(self, cfg: AttentionConfig, t: Any, s: Any) -> Any:
        assert cfg.window is not None
        return (s <= t) & (t - s < cfg.window) & ((t - s) % DILATION == 0)

    def keys_seen(self, cfg: AttentionConfig, seq_len: int) -> int:
        # Query t sees offsets 0, d, 2d, ... up to min(t, w - 1): min(t, w - 1) // d + 1 keys.
        assert cfg.window is not None
        m = min(seq_len, cfg.window)  # queries 0..m-1 still see back to position 0
        q, r = divmod(m, DILATION)  # sum of t // d over t < m
        early = m + DILATION * q * (q - 1) // 2 + r * q
        return early + (seq_len - m) * ((cfg.window - 1) // DILATION + 1)

    def first_needed(self, cfg: AttentionConfig, next_B: torch.Tensor) -> torch.Tensor:
        assert cfg.window is not None
        return next_B - cfg.window + 1  # the cache keeps the window; attend's default masks

    def bound(self, cfg: AttentionConfig) -> int | None:
        return cfg.window


@pytest.fixture
def dilated() -> Iterator[None]:
    register_kind(Dilated())
    yield
    unregister_kind(Dilated.name)


def _model(**kw: Any) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=50, **kw)
    return Transformer(cfg)


def _attention() -> AttentionConfig:
    return AttentionConfig(kind="dilated", window=5)


def test_unregistered_the_recipe_refuses_the_name():
    with pytest.raises(ValueError, match="Input should be 'full', 'sliding', 'chunked' or 'spar"):
        AttentionConfig(kind="dilated", window=5)


def test_registered_the_recipe_takes_it_and_checks_its_fields(dilated):
    assert _attention().kind == "dilated"
    with pytest.raises(ValueError, match="kind 'dilated' needs 'window'"):
        AttentionConfig(kind="dilated")
    # A per-layer window override applies to every kind that needs a window.
    cfg = ModelConfig(vocab_size=50, layer_pattern=[LayerSpec(attention="dilated", window=3)])
    assert cfg.attention_for(0).window == 3
    with pytest.raises(ValueError, match="applies to kind 'sliding' or 'dilated', not 'full'"):
        ModelConfig(vocab_size=50, layer_pattern=[LayerSpec(window=3)])


def test_mask_is_the_rule(dilated):
    # Window 4, every 2nd key: t=4 sees 4 and 2 (0 is 4 back, outside the window).
    assert attention_mask(AttentionConfig(kind="dilated", window=4), 7).int().tolist() == [
        [1, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0, 0],
        [0, 1, 0, 1, 0, 0, 0],
        [0, 0, 1, 0, 1, 0, 0],
        [0, 0, 0, 1, 0, 1, 0],
        [0, 0, 0, 0, 1, 0, 1],
    ]


def test_trains_a_step(dilated):
    model = _model(attention=_attention())
    idx_BT = torch.randint(0, 50, (2, 24))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    first = model(idx_BT[:, :-1], targets_BT=idx_BT[:, 1:]).loss
    first.backward()
    opt.step()
    second = model(idx_BT[:, :-1], targets_BT=idx_BT[:, 1:]).loss
    assert torch.isfinite(first) and second < first


@torch.no_grad()
def test_cached_decoding_equals_the_full_forward_and_stays_bounded(dilated):
    model = _model(attention=_attention()).eval()
    assert model.bounded_context
    idx_BT = torch.randint(0, 50, (2, 20))
    full_BTV = model(idx_BT).logits_BTV
    cache = model.new_cache()
    logits = [model(idx_BT[:, :7], cache=cache).logits_BTV]
    for t in range(7, 20):
        logits.append(model(idx_BT[:, t : t + 1], cache=cache).logits_BTV)
        assert len(cache) <= 5  # the kind's bound: the window
    torch.testing.assert_close(torch.cat(logits, dim=1), full_BTV, atol=1e-5, rtol=0)
    # One full layer makes the context unbounded.
    mixed = _model(attention=_attention(), layer_pattern=[LayerSpec(), LayerSpec(attention="full")])
    assert not mixed.bounded_context


@pytest.mark.parametrize("seq_len", [1, 4, 5, 6, 13])
def test_flops_count_the_keys_the_mask_shows(dilated, seq_len):
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=50, attention=_attention())
    seen = int(attention_mask(cfg.attention, seq_len).sum())
    assert mean_context(cfg, seq_len) == seen / seq_len
    d_attn = cfg.n_heads * cfg.head_dim
    f = flops_per_token(cfg, seq_len)
    assert f["attention"] == 3 * 4 * d_attn * 2 * (seen / seq_len)  # 2 layers
