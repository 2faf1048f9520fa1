import subprocess
import sys

import pytest

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.counts import flops_per_token, mean_context, param_count

CONFIGS = {
    "dense": ModelConfig(d_model=32, n_layers=3, n_heads=4, vocab_size=100),
    "moe": ModelConfig(
        d_model=32,
        n_layers=4,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=100,
        tie_embeddings=False,
        moe=MoEConfig(num_experts=4, top_k=2, num_shared_experts=1, expert_hidden=48),
    ),
    # Llama 4's MoE (input gating, raw sigmoid top-1, a shared expert) with heads wider
    # than d_model / n_heads, as Qwen3-30B-A3B has.
    "wide-heads": ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        d_head=12,
        qk_norm="rms",
        vocab_size=100,
        moe=MoEConfig(
            num_experts=4,
            top_k=1,
            num_shared_experts=1,
            score_func="sigmoid",
            norm_topk=False,
            gate_on="input",
        ),
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_counts_match_the_built_model(name):
    from superlab.model import Transformer
    from superlab.model.moe import MoE

    cfg = CONFIGS[name]
    model = Transformer(cfg)
    counts = param_count(cfg)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    # Active: drop the routed experts a token does not use.
    inactive = 0
    for block in model.blocks:
        if isinstance(block.mlp, MoE):
            per_expert = sum(
                w[0].numel() for w in (block.mlp.w1_EFD, block.mlp.w2_EDF, block.mlp.w3_EFD)
            )
            inactive += (cfg.moe.num_experts - cfg.moe.top_k) * per_expert
    assert counts["active"] == counts["total"] - inactive


def test_flops_pinned_for_a_dense_model():
    cfg = ModelConfig(d_model=64, n_layers=2, n_heads=4, vocab_size=1000, ffn_hidden=128)
    # Matmul weights per layer: 4 * 64^2 (attention) + 3 * 64 * 128 (SwiGLU); LM head 64 * 1000.
    n = 2 * (4 * 64 * 64 + 3 * 64 * 128) + 64 * 1000
    f = flops_per_token(cfg, seq_len=128)
    assert f["params_matmul"] == n
    assert f["matmul"] == 6 * n
    # Causal full attention: mean context (T + 1) / 2.
    assert f["attention"] == 3 * 4 * 2 * 64 * (129 / 2)
    assert f["total"] == f["matmul"] + f["attention"]


def test_mean_context_by_kind():
    full = ModelConfig(vocab_size=10)
    assert mean_context(full, 4) == (1 + 2 + 3 + 4) / 4
    sliding = ModelConfig(vocab_size=10, attention=AttentionConfig(kind="sliding", window=2))
    assert mean_context(sliding, 4) == (1 + 2 + 2 + 2) / 4
    chunked = ModelConfig(vocab_size=10, attention=AttentionConfig(kind="chunked", chunk_size=3))
    assert mean_context(chunked, 5) == (1 + 2 + 3 + 1 + 2) / 5


def test_counts_and_model_package_import_no_torch():
    code = (
        "import sys, superlab.model, superlab.model.counts, superlab.train; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_flops_use_the_explicit_head_dim():
    cfg = ModelConfig(
        d_model=64, n_layers=1, n_heads=4, n_kv_heads=2, d_head=24, ffn_hidden=128, vocab_size=10
    )
    # wq, wo: 64 x 96; wk, wv: 64 x 48; SwiGLU 3 x 64 x 128; head 64 x 10.
    n = 2 * 64 * 96 + 2 * 64 * 48 + 3 * 64 * 128 + 64 * 10
    f = flops_per_token(cfg, seq_len=16)
    assert f["params_matmul"] == n
    assert f["attention"] == 3 * 4 * 96 * (17 / 2)  # d_attn = n_heads * d_head = 96


SPARSE = AttentionConfig(kind="sparse", block_size=2, local_blocks=1, top_k_blocks=2)


def test_sparse_context_and_selection_hand_computed():
    # T = 11, blocks of 2: queries t = 0..10 in blocks 0..5 (block 5 holds t = 10 only).
    # Keys seen = own block up to t + 2 per local block + 2 per selected block, where block
    # i chooses min(2, i - 1) of its i - 1 older candidates:
    #   t:    0  1  2  3  4  5  6  7  8  9  10
    #   own:  1  2  1  2  1  2  1  2  1  2  1
    #   local 0  0  2  2  2  2  2  2  2  2  2
    #   chose 0  0  0  0  2  2  4  4  4  4  4
    #   sum   1  2  3  4  5  6  7  8  7  8  7  = 58
    # Candidates scored: 0 0 0 0 1 1 2 2 3 3 4 = 16.
    cfg = ModelConfig(
        d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=10, attention=SPARSE
    )
    assert mean_context(cfg, 11) == 58 / 11
    f = flops_per_token(cfg, seq_len=11)
    d_attn, C, G = 32, 8, 2
    # Block means over the 10 keys of complete blocks (G heads), then 2C per head per
    # candidate; forward only: the selection has no backward.
    select = (G * C * 10 + 2 * 4 * C * 16) / 11
    assert f["attention"] == pytest.approx(3 * 4 * d_attn * 58 / 11 + select)
    assert f["forward"] - f["matmul"] / 3 == pytest.approx(4 * d_attn * 58 / 11 + select)
    full = ModelConfig(d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=10)
    assert mean_context(full, 11) == 6  # (11 + 1) / 2: sparse no longer counts as full


@pytest.mark.parametrize(
    ("seq_len", "block", "local", "top_k"),
    [(11, 2, 1, 2), (37, 4, 2, 3), (40, 8, 0, 1), (9, 16, 1, 4), (33, 3, 1, 0)],
)
def test_sparse_context_equals_what_the_kernel_sees(seq_len, block, local, top_k):
    """Closed form = the visible keys of ``sparse_mask`` from a real block selection."""
    import torch

    from superlab.model.attention_sparse import select_blocks, sparse_mask

    a = AttentionConfig(kind="sparse", block_size=block, local_blocks=local, top_k_blocks=top_k)
    cfg = ModelConfig(d_model=32, n_layers=1, n_heads=2, vocab_size=10, attention=a)
    torch.manual_seed(0)
    q_BHTC, k_BGTC = torch.randn(1, 2, seq_len, 16), torch.randn(1, 2, seq_len, 16)
    idx_BHTK = select_blocks(q_BHTC, k_BGTC, block, top_k, local)
    seen_BH = sparse_mask(idx_BHTK, block, local).sum((-1, -2))
    assert (seen_BH == round(mean_context(cfg, seq_len) * seq_len)).all()
