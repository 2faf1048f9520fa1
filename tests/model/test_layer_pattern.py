"""Per-layer choices: pattern resolution, NoPE and its temperature, QK-norm, cache, counts."""

import math

import pytest
import torch

from superlab.config.recipe import (
    AttentionConfig,
    LayerSpec,
    ModelConfig,
    MoEConfig,
    NopeTemperatureConfig,
)
from superlab.model.attention import Attention, nope_temperature
from superlab.model.counts import flops_per_token, mean_context, param_count
from superlab.model.moe import MoE
from superlab.model.positions import Positions
from superlab.model.rope import RotaryEmbedding
from superlab.model.transformer import Transformer

# Llama 4 (Scout/Maverick "iRoPE"): three chunked RoPE layers, then a full NoPE layer.
LLAMA4 = [
    LayerSpec(attention="chunked", rope=True, mlp="moe"),
    LayerSpec(attention="chunked", rope=True, mlp="dense"),
    LayerSpec(attention="chunked", rope=True, mlp="moe"),
    LayerSpec(attention="full", rope=False, mlp="dense"),
]


def _cfg(pattern=LLAMA4, n_layers=8, **kw) -> ModelConfig:
    return ModelConfig(
        d_model=32,
        n_layers=n_layers,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=50,
        max_seq_len=32,
        attention=AttentionConfig(kind="chunked", chunk_size=6),
        moe=MoEConfig(num_experts=4, top_k=2),
        layer_pattern=pattern,
        **kw,
    )


def test_llama4_pattern_resolves_cyclically():
    cfg = _cfg()
    assert [cfg.attention_for(i).kind for i in range(8)] == ["chunked"] * 3 + ["full"] + [
        "chunked"
    ] * 3 + ["full"]
    assert all(cfg.attention_for(i).chunk_size == 6 for i in range(8))  # from model.attention
    assert [cfg.rope_for(i) for i in range(8)] == [True, True, True, False] * 2
    assert [cfg.is_moe_layer(i) for i in range(8)] == [True, False, True, False] * 2
    model = Transformer(cfg)
    assert [isinstance(b.mlp, MoE) for b in model.blocks] == [True, False, True, False] * 2
    assert [b.attn.use_rope for b in model.blocks] == [True, True, True, False] * 2


def test_no_pattern_is_todays_behaviour_and_specs_may_override():
    plain = ModelConfig(moe=MoEConfig(every=2), attention=AttentionConfig(kind="full"))
    assert [plain.is_moe_layer(i) for i in range(4)] == [False, True, False, True]
    assert all(plain.attention_for(i) is plain.attention and plain.rope_for(i) for i in range(4))
    # mlp unset follows moe.every; a spec's chunk_size overrides model.attention's.
    cfg = _cfg([LayerSpec(), LayerSpec(chunk_size=3)], n_layers=4)
    assert [cfg.is_moe_layer(i) for i in range(4)] == [False, True, False, True]
    assert [cfg.attention_for(i).chunk_size for i in range(4)] == [6, 3, 6, 3]


BAD = {
    "moe without section": (
        dict(moe=None, layer_pattern=[LayerSpec(mlp="moe")]),
        "layer_pattern.0.mlp: mlp 'moe' needs a 'model.moe' section",
    ),
    "chunked without size": (
        dict(layer_pattern=[LayerSpec(), LayerSpec(attention="chunked")]),
        "layer_pattern.1.chunk_size: kind 'chunked' needs 'chunk_size'",
    ),
    "sliding without window": (
        dict(layer_pattern=[LayerSpec(attention="sliding")]),
        "layer_pattern.0.window: kind 'sliding' needs 'window'",
    ),
    "window on full": (
        dict(layer_pattern=[LayerSpec(window=4)]),
        "layer_pattern.0.window: 'window' applies to kind 'sliding', not 'full'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_pattern_names_the_field(case):
    kw, expected = BAD[case]
    with pytest.raises(ValueError) as e:
        ModelConfig(**kw)
    cause = e.value.errors()[0]["ctx"]["error"]
    assert f"{cause.field}: {cause}".startswith(expected)


def _qk(cfg: ModelConfig, layer: int, start: int = 0):
    torch.manual_seed(0)
    attn = Attention(cfg, layer)
    cos, sin = RotaryEmbedding(cfg.head_dim, 16)(5, start)
    q, k = torch.randn(1, 4, 5, 8), torch.randn(1, 2, 5, 8)
    pos_BT = torch.arange(start, start + 5)[None]  # the cache path's per-row positions
    return attn, q, k, *attn._position(q, k, Positions(cos, sin, pos_BT=pos_BT))


def test_nope_layer_leaves_q_and_k_unrotated():
    _, q, k, q2, k2 = _qk(_cfg(), 3)  # the full NoPE layer, no temperature
    assert torch.equal(q2, q) and torch.equal(k2, k)
    _, q, k, q2, _ = _qk(_cfg(), 0)  # a RoPE layer rotates (position 0 is unchanged)
    assert torch.equal(q2[:, :, 0], q[:, :, 0]) and not torch.allclose(q2[:, :, 1:], q[:, :, 1:])


def test_nope_temperature_pinned():
    t = NopeTemperatureConfig(floor_scale=4, attn_scale=0.1)
    scale_T = nope_temperature(t, torch.arange(9))
    # floor((p + 1) / 4) = 0 0 0 1 1 1 1 2 2
    want = [1.0] * 3 + [1 + 0.1 * math.log(2)] * 4 + [1 + 0.1 * math.log(3)] * 2
    torch.testing.assert_close(scale_T, torch.tensor(want))
    cfg = _cfg(nope_temperature=t)
    _, q, k, q2, k2 = _qk(cfg, 3, start=3)  # positions 3..7
    torch.testing.assert_close(q2, q * torch.tensor(want[3:8])[:, None])
    assert torch.equal(k2, k)  # keys are not scaled
    _, q, _, q2, _ = _qk(cfg, 0, start=3)  # RoPE layers get no temperature
    torch.testing.assert_close(q2.norm(dim=-1), q.norm(dim=-1))


def test_qk_norm_rms_learned_before_rope_everywhere():
    for layer in (0, 3):  # RoPE and NoPE layers alike
        attn, _, _, q2, k2 = _qk(_cfg(qk_norm="rms"), layer)
        assert attn.q_norm.weight.shape == (8,) and attn.k_norm.weight.shape == (8,)
        # Unit RMS per head (gains 1); RoPE preserves the norm.
        torch.testing.assert_close(q2.pow(2).mean(-1), torch.ones(1, 4, 5), atol=1e-4, rtol=0)
        torch.testing.assert_close(k2.pow(2).mean(-1), torch.ones(1, 2, 5), atol=1e-4, rtol=0)


def test_qk_norm_l2_weightless_on_rope_layers_only():
    attn, _, _, q2, k2 = _qk(_cfg(qk_norm="l2"), 0)
    n_params = sum(p.numel() for p in attn.parameters())
    assert attn.q_norm is None and n_params == 2 * 32 * (4 * 8) + 2 * 32 * (2 * 8)  # wq wo; wk wv
    torch.testing.assert_close(q2.pow(2).mean(-1), torch.ones(1, 4, 5), atol=1e-4, rtol=0)
    _, q, k, q2, k2 = _qk(_cfg(qk_norm="l2"), 3)  # NoPE layer: untouched (Llama 4)
    assert torch.equal(q2, q) and torch.equal(k2, k)


@pytest.mark.parametrize("prefill", [1, 7])
@torch.no_grad()
def test_patterned_incremental_equals_full_forward(prefill):
    """Chunked RoPE layers + a full NoPE layer, l2 QK-norm, temperature active past pos 3."""
    t = NopeTemperatureConfig(floor_scale=4, attn_scale=0.5)
    torch.manual_seed(0)
    model = Transformer(_cfg(n_layers=4, qk_norm="l2", nope_temperature=t)).eval()
    idx_BT = torch.randint(0, 50, (2, 20))
    full_BTV = model(idx_BT).logits_BTV
    cache = model.new_cache()
    logits = [model(idx_BT[:, :prefill], cache=cache).logits_BTV]
    for i in range(prefill, 20):
        logits.append(model(idx_BT[:, i : i + 1], cache=cache).logits_BTV)
    torch.testing.assert_close(torch.cat(logits, 1), full_BTV, atol=1e-5, rtol=0)
    # Chunked layers keep their chunk (20 = 3 * 6 + 2), the full NoPE layer every key.
    assert [len(layer) for layer in cache.layers] == [2, 2, 2, 20]


def _input_grads(model: Transformer, idx_BT: torch.Tensor, t: int) -> torch.Tensor:
    emb_BTD = model.tok_emb(idx_BT).detach().requires_grad_(True)
    positions = Positions(*model.rope(idx_BT.shape[1]))
    x_BTD = emb_BTD
    for block in model.blocks:
        x_BTD = block(x_BTD, positions)
    model.norm(x_BTD)[0, t].sum().backward()
    return emb_BTD.grad[0].norm(dim=-1)


def test_global_nope_layer_lets_earlier_chunks_through():
    torch.manual_seed(0)
    model = Transformer(_cfg(n_layers=4))
    grad_T = _input_grads(model, torch.randint(0, 50, (1, 20)), 14)  # chunk 12..17
    assert torch.all(grad_T[:15] > 0) and torch.all(grad_T[15:] == 0)


def test_counts_follow_the_pattern():
    cfg = _cfg(n_layers=4, qk_norm="rms")
    assert param_count(cfg)["total"] == Transformer(cfg).num_params()
    assert param_count(cfg)["total"] == param_count(_cfg(n_layers=4))["total"] + 4 * 2 * 8
    # QK-norm gains are norm gains, not matmul weights.
    plain = flops_per_token(_cfg(n_layers=4), 12)["params_matmul"]
    assert flops_per_token(cfg, 12)["params_matmul"] == plain
    # Three chunked layers (c = 6) and one full layer over T = 12.
    chunked, full = (2 * (1 + 2 + 3 + 4 + 5 + 6)) / 12, 13 / 2
    assert mean_context(cfg, 12, layer=0) == chunked and mean_context(cfg, 12, layer=3) == full
    assert mean_context(cfg, 12) == pytest.approx((3 * chunked + full) / 4)
    assert flops_per_token(cfg, 12)["attention"] == pytest.approx(3 * 4 * 32 * (3 * chunked + full))
