import math

import pytest
import torch

from superlab.config.recipe import AttentionConfig, ModelConfig
from superlab.model.attention import Attention, attention_mask
from superlab.model.positions import Positions
from superlab.model.rope import RotaryEmbedding

KINDS = [
    AttentionConfig(kind="full"),
    AttentionConfig(kind="sliding", window=3),
    AttentionConfig(kind="chunked", chunk_size=4),
]


def _visible(cfg: AttentionConfig, t: int, s: int) -> bool:
    """The definition, one (query, key) pair at a time."""
    if s > t:
        return False
    if cfg.kind == "sliding":
        return t - s <= cfg.window - 1
    if cfg.kind == "chunked":
        return t // cfg.chunk_size == s // cfg.chunk_size
    return True


@pytest.mark.parametrize("cfg", KINDS, ids=lambda c: c.kind)
def test_mask_matches_definition(cfg):
    T = 11
    expected = torch.tensor([[_visible(cfg, t, s) for s in range(T)] for t in range(T)])
    assert torch.equal(attention_mask(cfg, T), expected)


def test_sliding_and_chunked_pinned():
    # sliding w=2: itself and one previous token.
    assert attention_mask(AttentionConfig(kind="sliding", window=2), 4).int().tolist() == [
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 1],
    ]
    # chunked c=2: token 2 starts a new chunk and sees nothing before it.
    assert attention_mask(AttentionConfig(kind="chunked", chunk_size=2), 5).int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 1],
    ]


def test_doc_mask_blocks_other_documents():
    doc_ids_BT = torch.tensor([[0, 0, 1, 1, 1]])
    mask = attention_mask(AttentionConfig(kind="full"), 5, doc_ids_BT)
    assert mask.shape == (1, 1, 5, 5)
    assert mask[0, 0].int().tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1],
    ]


def _cfg(attn: AttentionConfig, n_kv_heads: int | None = 2) -> ModelConfig:
    return ModelConfig(d_model=32, n_heads=4, n_kv_heads=n_kv_heads, vocab_size=50, attention=attn)


def _loop_reference(layer: Attention, x_BTD, cfg: ModelConfig, doc_ids_BT=None):
    """Attention one query at a time over the keys it may see."""
    B, T, _ = x_BTD.shape
    H, G, C = cfg.n_heads, cfg.kv_heads, cfg.head_dim
    cos, sin = RotaryEmbedding(C, T, cfg.rope_theta)(T)
    from superlab.model.rope import apply_rope

    q = apply_rope(layer.wq(x_BTD).view(B, T, H, C).transpose(1, 2), cos, sin)
    k = apply_rope(layer.wk(x_BTD).view(B, T, G, C).transpose(1, 2), cos, sin)
    v = layer.wv(x_BTD).view(B, T, G, C).transpose(1, 2)
    y = torch.zeros(B, H, T, C)
    for b in range(B):
        for h in range(H):
            g = h // (H // G)
            for t in range(T):
                keys = [
                    s
                    for s in range(T)
                    if _visible(cfg.attention, t, s)
                    and (doc_ids_BT is None or doc_ids_BT[b, s] == doc_ids_BT[b, t])
                ]
                scores = torch.stack([q[b, h, t] @ k[b, g, s] for s in keys]) / math.sqrt(C)
                w = scores.softmax(0)
                y[b, h, t] = sum(w[i] * v[b, g, s] for i, s in enumerate(keys))
    return layer.wo(y.transpose(1, 2).reshape(B, T, H * C))


@pytest.mark.parametrize("attn", KINDS, ids=lambda c: c.kind)
@pytest.mark.parametrize("with_docs", [False, True])
def test_attention_matches_loop(attn, with_docs):
    torch.manual_seed(0)
    cfg = _cfg(attn)
    layer = Attention(cfg)
    x_BTD = torch.randn(2, 9, 32)
    doc_ids_BT = torch.tensor([[0] * 4 + [1] * 5, [0] * 2 + [1] * 6 + [2]]) if with_docs else None
    cos, sin = RotaryEmbedding(cfg.head_dim, 9)(9)
    got = layer(x_BTD, Positions(cos, sin, doc_ids_BT))
    want = _loop_reference(layer, x_BTD, cfg, doc_ids_BT)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_gqa_equals_mha_with_repeated_kv():
    torch.manual_seed(0)
    gqa = Attention(_cfg(AttentionConfig(), n_kv_heads=2))
    mha = Attention(_cfg(AttentionConfig(), n_kv_heads=None))
    C = 8
    with torch.no_grad():
        mha.wq.weight.copy_(gqa.wq.weight)
        mha.wo.weight.copy_(gqa.wo.weight)
        # kv head g serves query heads 2g and 2g+1: repeat each head's rows twice.
        for name in ("wk", "wv"):
            w_GCD = getattr(gqa, name).weight.view(2, C, 32)
            getattr(mha, name).weight.copy_(w_GCD.repeat_interleave(2, dim=0).reshape(4 * C, 32))
    x_BTD = torch.randn(2, 7, 32)
    cos, sin = RotaryEmbedding(C, 7)(7)
    positions = Positions(cos, sin)
    torch.testing.assert_close(gqa(x_BTD, positions), mha(x_BTD, positions))


def test_causal_fast_path_equals_mask_path():
    torch.manual_seed(0)
    layer = Attention(_cfg(AttentionConfig()))
    x_BTD = torch.randn(2, 8, 32)
    cos, sin = RotaryEmbedding(8, 8)(8)
    fast = layer(x_BTD, Positions(cos, sin))
    masked = layer(x_BTD, Positions(cos, sin, torch.zeros(2, 8, dtype=torch.long)))
    torch.testing.assert_close(fast, masked, atol=1e-6, rtol=1e-5)
