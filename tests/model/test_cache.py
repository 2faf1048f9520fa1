"""KV-cache decoding equals the full forward, caches stay bounded, chunks stay isolated."""

import pytest
import torch

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.attention_kinds import kernels as attention_module
from superlab.model.positions import Positions
from superlab.model.transformer import Transformer

KINDS = {
    "full": AttentionConfig(kind="full"),
    "sliding": AttentionConfig(kind="sliding", window=5),
    "chunked": AttentionConfig(kind="chunked", chunk_size=6),
    "sparse": AttentionConfig(kind="sparse", block_size=4, top_k_blocks=1, local_blocks=1),
}


def _model(
    attention: AttentionConfig, moe: bool = False, kv_heads: int = 2, mix: str = ""
) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=kv_heads,
        vocab_size=50,
        max_seq_len=32,
        attention=attention,
        moe=MoEConfig(num_experts=4, top_k=2, every=2) if moe else None,
        **({mix: True} if mix else {}),
    )
    return Transformer(cfg).eval()


def _incremental(model: Transformer, idx_BT: torch.Tensor, prefill: int) -> torch.Tensor:
    """Logits from a prefill of ``prefill`` tokens, then one token per call."""
    cache = model.new_cache()
    logits = [model(idx_BT[:, :prefill], cache=cache).logits_BTV]
    for t in range(prefill, idx_BT.shape[1]):
        logits.append(model(idx_BT[:, t : t + 1], cache=cache).logits_BTV)
    assert cache.pos == idx_BT.shape[1]
    return torch.cat(logits, dim=1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
@pytest.mark.parametrize("mix", ["", "token_shift", "smear_keys"])
@torch.no_grad()
def test_incremental_logits_equal_full_forward(kind, moe, kv_heads, mix):
    model = _model(KINDS[kind], moe, kv_heads, mix)
    idx_BT = torch.randint(0, 50, (2, 20))
    full_BTV = model(idx_BT).logits_BTV
    for prefill in (1, 7):
        inc_BTV = _incremental(model, idx_BT, prefill)
        torch.testing.assert_close(inc_BTV, full_BTV, atol=1e-5, rtol=0)


@torch.no_grad()
def test_chunked_prefill_spanning_chunks():
    model = _model(KINDS["chunked"])
    idx_BT = torch.randint(0, 50, (1, 20))
    cache = model.new_cache()
    a = model(idx_BT[:, :9], cache=cache).logits_BTV  # crosses the boundary at 6
    b = model(idx_BT[:, 9:], cache=cache).logits_BTV  # crosses 12 and 18
    torch.testing.assert_close(torch.cat([a, b], 1), model(idx_BT).logits_BTV, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("kind", "bound"), [("sliding", 5), ("chunked", 6)])
@torch.no_grad()
def test_local_caches_stay_bounded(kind, bound):
    model = _model(KINDS[kind])
    cache = model.new_cache()
    model(torch.randint(0, 50, (1, 9)), cache=cache)
    for _ in range(40):  # past max_seq_len: bounded caches keep going
        model(torch.randint(0, 50, (1, 1)), cache=cache)
        for layer in cache.layers:
            assert layer.k_BGSC is not None and layer.v_BGSC is not None
            assert layer.k_BGSC.shape[2] <= bound and layer.v_BGSC.shape[2] <= bound
    if kind == "chunked":  # position 49 = 8 * 6 + 1: one key of the current chunk
        assert len(cache) == 49 % 6


@torch.no_grad()
def test_full_cache_keeps_everything():
    model = _model(KINDS["full"])
    cache = model.new_cache()
    model(torch.randint(0, 50, (1, 9)), cache=cache)
    model(torch.randint(0, 50, (1, 1)), cache=cache)
    assert len(cache) == 10 and cache.layers[0].k_BGSC.shape == (1, 2, 10, 8)


def test_cache_rejects_packed_documents():
    model = _model(KINDS["full"])
    idx_BT = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="doc_ids_BT"):
        model(idx_BT, doc_ids_BT=torch.zeros_like(idx_BT), cache=model.new_cache())


def _input_grads(model: Transformer, idx_BT: torch.Tensor, t: int) -> torch.Tensor:
    """Gradient norm of the output at position ``t`` w.r.t. each input token embedding."""
    emb_BTD = model.tok_emb(idx_BT).detach().requires_grad_(True)
    positions = Positions(*model.rope(idx_BT.shape[1]))
    x_BTD = emb_BTD
    for block in model.blocks:
        x_BTD = block(x_BTD, positions)
    model.norm(x_BTD)[0, t].sum().backward()
    assert emb_BTD.grad is not None
    return emb_BTD.grad[0].norm(dim=-1)


@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
def test_chunked_output_has_zero_gradient_from_earlier_chunks(moe):
    idx_BT = torch.randint(0, 50, (1, 20))
    t = 14  # chunk 2 = positions 12..17
    grad_T = _input_grads(_model(KINDS["chunked"], moe), idx_BT, t)
    assert torch.all(grad_T[:12] == 0)  # exactly zero, not merely small
    assert torch.all(grad_T[12 : t + 1] > 0) and torch.all(grad_T[t + 1 :] == 0)
    full_T = _input_grads(_model(KINDS["full"], moe), idx_BT, t)
    assert torch.all(full_T[: t + 1] > 0)


@pytest.mark.parametrize("masked_max_t", [0, 256], ids=["block-kernels", "short-masked"])
@torch.no_grad()
def test_model_forward_uses_the_efficient_kernels_faithfully(monkeypatch, masked_max_t):
    """Sliding/chunked/sparse on block-wise kernels or, for short T, the mask: same logits."""
    monkeypatch.setattr(attention_module, "MASKED_MAX_T", masked_max_t)
    idx_BT = torch.randint(0, 50, (2, 20))
    for kind in ("sliding", "chunked"):
        model = _model(KINDS[kind])
        fast_BTV = model(idx_BT).logits_BTV
        # The cache path masks with `visible`, the reference rule; a fresh cache per call.
        ref_BTV = model(idx_BT, cache=model.new_cache()).logits_BTV
        torch.testing.assert_close(fast_BTV, ref_BTV, atol=1e-5, rtol=0)
    # Sparse attention that may select every older block is full causal attention.
    every = AttentionConfig(kind="sparse", block_size=4, top_k_blocks=5, local_blocks=0)
    sparse_BTV = _model(every)(idx_BT).logits_BTV
    full_BTV = _model(KINDS["full"])(idx_BT).logits_BTV
    torch.testing.assert_close(sparse_BTV, full_BTV, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["sliding", "sparse"])
def test_the_short_sequence_mask_path_equals_the_block_kernels_with_gradients(monkeypatch, kind):
    idx_BT = torch.randint(0, 50, (2, 24))
    doc_ids_BT = torch.tensor([[0] * 10 + [1] * 14, [0] * 24])
    model = _model(KINDS[kind])
    seen = {}
    for limit in (0, 256):
        monkeypatch.setattr(attention_module, "MASKED_MAX_T", limit)
        model.zero_grad()
        logits_BTV = model(idx_BT, doc_ids_BT=doc_ids_BT).logits_BTV
        logits_BTV.square().mean().backward()
        seen[limit] = (logits_BTV.detach(), [p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(seen[0][0], seen[256][0], atol=1e-5, rtol=0)
    for a, b in zip(seen[0][1], seen[256][1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_long_sequences_keep_the_block_kernels_and_short_ones_the_mask(monkeypatch):
    calls = []
    real = attention_module.sliding_attention
    monkeypatch.setattr(
        attention_module, "sliding_attention", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    monkeypatch.setattr(attention_module, "MASKED_MAX_T", 16)
    model = _model(KINDS["sliding"])
    with torch.no_grad():
        model(torch.randint(0, 50, (1, 16)))
        assert calls == []
        model(torch.randint(0, 50, (1, 17)))
    assert calls  # above the limit: the block-wise kernel
