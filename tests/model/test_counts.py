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
