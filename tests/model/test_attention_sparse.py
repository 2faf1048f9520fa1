"""Block-sparse attention: fast path equals its T×T-mask reference; selection is causal."""

import pytest
import torch
import torch.nn.functional as F

from superlab.model.attention_blockwise import chunked_attention
from superlab.model.attention_sparse import select_blocks, sparse_attention, sparse_mask

TOL = 1e-5  # float32, fast path vs reference path


def _inputs(T: int, H: int, G: int, docs: bool, seed: int = 0, B: int = 2, C: int = 8):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, n, T, C, generator=gen, requires_grad=True) for n in (H, G, G))
    # Packed documents are contiguous runs of one id.
    doc_ids = torch.randint(0, 3, (B, T), generator=gen).sort(dim=1).values if docs else None
    return q, k, v, doc_ids


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
    ("T", "block_size", "top_k", "local"),
    [(1, 4, 2, 1), (37, 4, 2, 1), (64, 8, 3, 0), (70, 8, 1, 2), (50, 5, 0, 1), (45, 4, 4, 3)],
)
def test_sparse_matches_reference(T, block_size, top_k, local, H, G, docs):
    q, k, v, doc_ids = _inputs(T, H, G, docs)
    fast = sparse_attention(q, k, v, block_size, top_k, local, doc_ids)
    ref = sparse_attention(q, k, v, block_size, top_k, local, doc_ids, masked=True)
    _assert_same(fast, ref, q, k, v)


@pytest.mark.parametrize("docs", [False, True], ids=["nodoc", "doc"])
@pytest.mark.parametrize("seed", range(5))
def test_selection_only_older_blocks(seed, docs):
    T, bs, top_k, local = 83, 4, 3, 1
    q, k, _, doc_ids = _inputs(T, 4, 2, docs, seed=seed)
    idx_BHTK = select_blocks(q, k, bs, top_k, local, doc_ids)
    query_block_T = torch.arange(T) // bs
    valid = idx_BHTK >= 0
    # Strictly before the own block and its local blocks: never the present, never the future.
    assert (idx_BHTK < (query_block_T - local)[:, None]).logical_or(~valid).all()
    # Each query picks min(top_k, #eligible) distinct blocks.
    n_eligible_T = (query_block_T - local).clamp(min=0)
    if not docs:
        assert torch.equal(valid.sum(-1), n_eligible_T.clamp(max=top_k).expand_as(valid[..., 0]))
    else:  # a selected block lies wholly in the query's document
        picks = valid.nonzero().tolist()
        assert picks, "no block was selected: the test would be vacuous"
        for b, h, t, j in picks:
            blk = idx_BHTK[b, h, t, j]
            assert (doc_ids[b, blk * bs : (blk + 1) * bs] == doc_ids[b, t]).all()


@pytest.mark.parametrize("docs", [False, True], ids=["nodoc", "doc"])
def test_output_ignores_the_future(docs):
    """Changing q, k, v after position t changes no output at or before t (gate included)."""
    T, t = 61, 29
    q, k, v, doc_ids = _inputs(T, 4, 2, docs, seed=3)
    out = sparse_attention(q, k, v, 4, 2, 1, doc_ids)
    gen = torch.Generator().manual_seed(9)
    q2, k2, v2 = (x.detach().clone() for x in (q, k, v))
    for x in (q2, k2, v2):
        x[:, :, t + 1 :] = torch.randn(x[:, :, t + 1 :].shape, generator=gen) * 10
    out2 = sparse_attention(q2, k2, v2, 4, 2, 1, doc_ids)
    torch.testing.assert_close(out2[:, :, : t + 1], out[:, :, : t + 1], atol=0, rtol=0)


def test_all_blocks_selected_is_full_causal():
    T, bs = 53, 4
    q, k, v, _ = _inputs(T, 4, 2, docs=False)
    fast = sparse_attention(q, k, v, bs, top_k_blocks=T, local_blocks=1)
    full = F.scaled_dot_product_attention(
        q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), is_causal=True
    )
    _assert_same(fast, full, q, k, v)


def test_no_selection_no_local_is_chunked():
    q, k, v, doc_ids = _inputs(45, 4, 2, docs=True)
    fast = sparse_attention(q, k, v, 8, top_k_blocks=0, local_blocks=0, doc_ids_BT=doc_ids)
    _assert_same(fast, chunked_attention(q, k, v, 8, doc_ids), q, k, v)


def test_mask_pinned():
    # Block 3 (positions 6-7), local 1: sees blocks 2-3 and the selected block 0, causally.
    idx = torch.tensor([[-1], [-1], [-1], [-1], [-1], [-1], [0], [-1]]).view(1, 1, 8, 1)
    mask = sparse_mask(idx, block_size=2, local_blocks=1)[0, 0].int()
    assert mask[6].tolist() == [1, 1, 0, 0, 1, 1, 1, 0]
    assert mask[7].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_no_grad_path():
    q, k, v, doc_ids = _inputs(40, 4, 2, docs=True)
    with torch.no_grad():
        fast = sparse_attention(q, k, v, 4, 2, 1, doc_ids)
    ref = sparse_attention(q, k, v, 4, 2, 1, doc_ids, masked=True)
    torch.testing.assert_close(fast, ref, atol=TOL, rtol=TOL)
