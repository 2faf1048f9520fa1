"""Parameter and FLOP counts from a ``ModelConfig``, without torch (``plan`` uses them).

Training FLOPs per token follow Kaplan et al. 2020 (table 1) and PaLM (Chowdhery et
al. 2022, appendix B): ``6 * N`` for the matmuls (2 forward + 4 backward per
parameter per token) plus the attention score and value matmuls, which have no
parameters. Per layer and token the forward pass does ``QK^T`` and ``AV``, each
``2 * d_attn * ctx`` FLOPs, so ``4 * d_attn * ctx`` forward and ``12 * d_attn * ctx``
for training (PaLM's ``12 * L * H * Q * T`` uses the non-causal ctx = T). Here ctx is
the number of keys a query actually sees, averaged over positions: ``(T + 1) / 2``
for causal full attention (the "halved" PaLM term), ``min(t + 1, w)`` for a sliding
window, ``t mod c + 1`` for chunks, each layer by its own kind (``model.layer_pattern``):
the kind object counts it (``AttentionKind.keys_seen``, ``superlab.model.attention_kinds``),
and adds the FLOPs it spends choosing keys (``select_flops``: ``sparse``'s block scoring).

N counts the matmul weights a token passes through: with MoE only the router, the
top-k routed experts and the shared experts (the active parameters); the LM head is
counted (tied or not), the embedding lookup and the per-channel gains (norms, QK-norm's, and
the token-shift gain of ``model.token_shift``, the key-smear logits of
``model.smear_keys``) are not.
Attention projections are ``n_heads * head_dim`` wide (``model.d_head`` when set). Gating
an expert's input (``moe.gate_on: input``) instead of its output is the same D multiplies
per slot, too few to count either way.

A vision tower (``model.vision``, early fusion) is counted apart: ``vision_params`` (stored
in ``param_count``'s ``total`` and ``vision``, never in ``active``: a text token does not
pass through it) and ``vision_flops_per_image``. An image's placeholder tokens are
positions of the text sequence, so the backbone's share is already in the per-token
figures; the tower's is per image: the ViT over ``grid^2`` patches plus the class token
(matmuls ``2 * weights * positions``, bidirectional attention ``4 * D * L`` per position
and layer) and the projector over ``tokens_per_image`` merged tokens.
"""

from __future__ import annotations

from superlab.config.recipe import ModelConfig
from superlab.config.vision import VisionConfig
from superlab.model.attention_kinds import get_kind


def _vocab(cfg: ModelConfig) -> int:
    if cfg.vocab_size is None:
        raise ValueError("ModelConfig.vocab_size is None; fill it in (the tokenizer's) first")
    return cfg.vocab_size


def _gains(cfg: ModelConfig) -> int:
    """Per layer: the per-channel gains, not matmul weights.

    The two RMSNorms, the learned q and k RMSNorm gains of ``qk_norm: rms`` (``l2`` has
    none), the token-shift gain and the key-smear logits (one per key/value head).
    """
    qk = 2 * cfg.head_dim if cfg.qk_norm == "rms" else 0
    return 2 * cfg.d_model + qk + cfg.d_model * cfg.token_shift + cfg.kv_heads * cfg.smear_keys


def _layer_params(cfg: ModelConfig, layer: int) -> tuple[int, int]:
    """(stored, active) parameters of one block, norms included."""
    D, C = cfg.d_model, cfg.head_dim
    attn = D * cfg.n_heads * C * 2 + D * cfg.kv_heads * C * 2  # wq, wo; wk, wv
    norms = _gains(cfg)
    if not cfg.is_moe_layer(layer):
        mlp = 3 * D * cfg.hidden
        return attn + norms + mlp, attn + norms + mlp
    assert cfg.moe is not None
    m = cfg.moe
    expert = 3 * D * (m.expert_hidden or cfg.hidden)
    router = D * m.num_experts
    stored = router + (m.num_experts + m.num_shared_experts) * expert
    active = router + (m.top_k + m.num_shared_experts) * expert
    return attn + norms + stored, attn + norms + active


def param_count(cfg: ModelConfig) -> dict[str, int]:
    """Stored (``total``) and per-token (``active``) parameters, plus the embedding's share."""
    V, D = _vocab(cfg), cfg.d_model
    embedding = V * D
    head = 0 if cfg.tie_embeddings else V * D
    layers = [_layer_params(cfg, i) for i in range(cfg.n_layers)]
    vision = 0 if cfg.vision is None else vision_params(cfg.vision, D)
    total = embedding + head + sum(s for s, _ in layers) + D + vision  # + final norm
    active = embedding + head + sum(a for _, a in layers) + D
    return {
        "total": total,
        "active": active,
        "embedding": embedding,
        "non_embedding": total - embedding - head,
        "vision": vision,
    }


def _vision_matmuls(v: VisionConfig, d_text: int) -> tuple[int, int, int]:
    """(weights each ViT position passes through, patch-embedding weights, projector weights)."""
    D, F = v.d_model, v.ffn_hidden
    block = 4 * D * D + 2 * D * F  # wq wk wv wo, fc1 fc2
    projector = D * v.merge**2 * v.projector_dim + v.projector_dim**2 + v.projector_dim * d_text
    return v.n_layers * block, v.channels * v.patch_size**2 * D, projector


def vision_params(v: VisionConfig, d_text: int) -> int:
    """Parameters of the vision tower and projector, biases, norms and tables included."""
    D, F, L = v.d_model, v.ffn_hidden, v.grid**2 + 1
    blocks, patch, projector = _vision_matmuls(v, d_text)
    per_block_rest = 4 * D + F + D + 2 * (2 * D)  # q/k/v/o biases, fc1/fc2 biases, 2 norms
    tables = D + L * D + 2 * (2 * D)  # class token, positions, pre and post norms
    return blocks + v.n_layers * per_block_rest + patch + tables + projector


def vision_flops_per_image(v: VisionConfig, d_text: int) -> dict[str, float]:
    """Forward and training (3x: the tower is trained) FLOPs of one image through the tower."""
    D, L = v.d_model, v.grid**2 + 1
    blocks, patch, projector = _vision_matmuls(v, d_text)
    matmul = 2.0 * (blocks * L + patch * v.grid**2 + projector * v.tokens_per_image)
    attention = 4.0 * D * L * L * v.n_layers
    forward = matmul + attention
    return {"matmul": matmul, "attention": attention, "forward": forward, "total": 3.0 * forward}


def mean_context(cfg: ModelConfig, seq_len: int, layer: int | None = None) -> float:
    """Keys a query sees, averaged over positions 0..seq_len-1 (and layers, without ``layer``)."""
    layers = range(cfg.n_layers) if layer is None else [layer]
    seen = 0
    for i in layers:
        a = cfg.attention_for(i)
        seen += get_kind(a.kind).keys_seen(a, seq_len)
    return seen / (seq_len * len(layers))


def flops_per_token(cfg: ModelConfig, seq_len: int) -> dict[str, float]:
    """Training FLOPs per token: ``matmul`` (6 N_active) + ``attention``, and ``forward``."""
    V, D = _vocab(cfg), cfg.d_model
    norms = D + cfg.n_layers * _gains(cfg)
    # Active matmul weights: drop the embedding lookup and norms, add the LM head once.
    n_matmul = param_count(cfg)["active"] - norms - V * D + V * D * cfg.tie_embeddings
    d_attn = cfg.n_heads * cfg.head_dim
    attn_fwd = 4 * d_attn * sum(mean_context(cfg, seq_len, i) for i in range(cfg.n_layers))
    kinds = [(get_kind(a.kind), a) for a in map(cfg.attention_for, range(cfg.n_layers))]
    select = sum(kind.select_flops(cfg, a, seq_len) for kind, a in kinds)
    return {
        "params_matmul": float(n_matmul),
        "matmul": 6.0 * n_matmul,
        "attention": 3.0 * attn_fwd + select,
        "forward": 2.0 * n_matmul + attn_fwd + select,
        "total": 6.0 * n_matmul + 3.0 * attn_fwd + select,
    }
