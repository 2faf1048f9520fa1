"""Block-wise sliding and chunked attention equal the masked-SDPA reference, values and grads."""

import pytest
import torch
import torch.nn.functional as F

from superlab.config.recipe import AttentionConfig
from superlab.model.attention import attention_mask
from superlab.model.attention_blockwise import chunked_attention, sliding_attention

TOL = 1e-5  # float32, fast path vs reference path


def _inputs(T: int, H: int, G: int, docs: bool, seed: int = 0, B: int = 2, C: int = 8):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, n, T, C, generator=gen, requires_grad=True) for n in (H, G, G))
    # Packed documents are contiguous runs of one id.
    doc_ids = torch.randint(0, 4, (B, T), generator=gen).sort(dim=1).values if docs else None
    return q, k, v, doc_ids


def _reference(cfg: AttentionConfig, q, k, v, doc_ids):
    r = q.shape[1] // k.shape[1]
    mask = attention_mask(cfg, q.shape[2], doc_ids)
    return F.scaled_dot_product_attention(
        q, k.repeat_interleave(r, 1), v.repeat_interleave(r, 1), attn_mask=mask
    )


def _assert_same(fast, ref, q, k, v):
    """Outputs and the gradients of q, k, v under one random upstream gradient agree."""
    torch.testing.assert_close(fast, ref, atol=TOL, rtol=TOL)
    grad_out = torch.randn_like(ref)
    g_fast = torch.autograd.grad(fast, (q, k, v), grad_out)
    g_ref = torch.autograd.grad(ref, (q, k, v), grad_out)
    for a, b in zip(g_fast, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("docs", [False, True], ids=["nodoc", "doc"])
@pytest.mark.parametrize(("H", "G"), [(2, 2), (4, 2), (4, 1)])
@pytest.mark.parametrize(
    ("T", "window", "block"),
    [(1, 1, 4), (37, 1, 8), (37, 3, 8), (37, 8, 8), (50, 17, 16), (64, 64, 16), (29, 100, 128)],
)
def test_sliding_matches_reference(T, window, block, H, G, docs):
    q, k, v, doc_ids = _inputs(T, H, G, docs)
    cfg = AttentionConfig(kind="sliding", window=window)
    fast = sliding_attention(q, k, v, window, doc_ids, block=block)
    _assert_same(fast, _reference(cfg, q, k, v, doc_ids), q, k, v)


@pytest.mark.parametrize("docs", [False, True], ids=["nodoc", "doc"])
@pytest.mark.parametrize(("H", "G"), [(2, 2), (4, 2), (4, 1)])
@pytest.mark.parametrize(("T", "chunk"), [(1, 4), (37, 1), (37, 5), (48, 16), (50, 16), (20, 64)])
def test_chunked_matches_reference(T, chunk, H, G, docs):
    q, k, v, doc_ids = _inputs(T, H, G, docs)
    cfg = AttentionConfig(kind="chunked", chunk_size=chunk)
    fast = chunked_attention(q, k, v, chunk, doc_ids)
    _assert_same(fast, _reference(cfg, q, k, v, doc_ids), q, k, v)


def test_window_covering_everything_is_full_causal():
    q, k, v, _ = _inputs(40, 4, 2, docs=False)
    full = F.scaled_dot_product_attention(
        q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), is_causal=True
    )
    torch.testing.assert_close(sliding_attention(q, k, v, 40, block=8), full, atol=TOL, rtol=TOL)
    torch.testing.assert_close(chunked_attention(q, k, v, 40), full, atol=TOL, rtol=TOL)


def test_no_grad_and_output_shape():
    q, k, v, doc_ids = _inputs(33, 4, 2, docs=True)
    with torch.no_grad():
        assert sliding_attention(q, k, v, 5, doc_ids).shape == q.shape
        assert chunked_attention(q, k, v, 8, doc_ids).shape == q.shape
