"""Qwen3-MoE (``Qwen3MoeForCausalLM``) <-> superlab, checked against transformers itself."""

import json

import pytest
import torch

from superlab.config.recipe import AttentionConfig, LayerSpec, ModelConfig, MoEConfig
from superlab.model.hf import config_from_hf, config_to_hf, export_hf, import_hf
from superlab.model.transformer import Transformer

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'superlab[bench]')"
)

VOCAB, SEQ = 128, 16
BASE = dict(
    hidden_size=64,
    intermediate_size=96,
    moe_intermediate_size=32,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=VOCAB,
    max_position_embeddings=64,
    num_experts=4,
    num_experts_per_tok=2,
)
CASES = {
    # head_dim 24 != 64 / 4 (as Qwen3-30B-A3B: 2048 / 32 heads, 128 per head), raw top-k
    # weights (norm_topk_prob false, the default), a dense first layer (mlp_only_layers).
    "wide-heads": dict(num_hidden_layers=4, head_dim=24, mlp_only_layers=[0]),
    # Renormalised top-k, MoE every other layer, a sliding window shorter than SEQ, tied
    # embeddings, linear RoPE scaling.
    "variants": dict(
        num_hidden_layers=4,
        norm_topk_prob=True,
        decoder_sparse_step=2,
        use_sliding_window=True,
        sliding_window=5,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "linear", "rope_theta": 1e6, "factor": 2.0},
    ),
}


def _hf_model(**overrides):
    torch.manual_seed(0)
    config = transformers.Qwen3MoeConfig(**(BASE | overrides))
    config._attn_implementation = "eager"  # transformers' sdpa path is not bit-exact
    model = transformers.Qwen3MoeForCausalLM(config).float().eval()
    with torch.no_grad():  # weights large enough for peaked attention and decided routing
        for name, p in model.named_parameters():
            p.uniform_(0.5, 1.5) if "norm" in name else p.normal_(0.0, 0.1)
    return model


def _idx() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, SEQ), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def _hf_logits(model, idx_BT: torch.Tensor) -> torch.Tensor:
    return model(idx_BT).logits


@torch.no_grad()
def _ours_logits(model: Transformer, idx_BT: torch.Tensor) -> torch.Tensor:
    return model(idx_BT).logits_BTV


def _bitwise_equal(a: Transformer, b: Transformer) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("case", sorted(CASES))
def test_qwen3_moe_matches_transformers_both_ways(tmp_path, case):
    hf = _hf_model(**CASES[case])
    hf.save_pretrained(tmp_path / "hf")
    ours = import_hf(tmp_path / "hf")
    idx_BT = _idx()
    want = _hf_logits(hf, idx_BT)
    torch.testing.assert_close(_ours_logits(ours, idx_BT), want, atol=1e-4, rtol=1e-4)
    ours.train()  # training mode changes nothing in the forward
    torch.testing.assert_close(_ours_logits(ours, idx_BT), want, atol=1e-4, rtol=1e-4)
    ours.eval()

    export_hf(ours, tmp_path / "back", "qwen3_moe")
    back = transformers.Qwen3MoeForCausalLM.from_pretrained(
        tmp_path / "back", attn_implementation="eager"
    )
    torch.testing.assert_close(_hf_logits(back.eval(), idx_BT), want, atol=1e-4, rtol=1e-4)
    again = import_hf(back)
    assert again.cfg == ours.cfg and _bitwise_equal(again, ours)


def test_qwen3_moe_config_maps_to_ours():
    cfg = config_from_hf(_hf_model(**CASES["wide-heads"]).config.to_dict())[1]
    assert cfg.d_head == cfg.head_dim == 24 and cfg.qk_norm == "rms" and cfg.norm_eps == 1e-6
    assert cfg.layer_pattern == [LayerSpec(mlp="dense"), *[LayerSpec(mlp="moe")] * 3]
    assert [cfg.is_moe_layer(i) for i in range(4)] == [False, True, True, True]
    moe = cfg.moe
    assert moe is not None and (moe.num_experts, moe.top_k, moe.expert_hidden) == (4, 2, 32)
    assert (moe.score_func, moe.norm_topk, moe.gate_on) == ("softmax", False, "output")
    other = config_from_hf(_hf_model(**CASES["variants"]).config.to_dict())[1]
    assert other.layer_pattern is None and other.moe is not None and other.moe.every == 2
    assert other.moe.norm_topk and other.d_head is None and other.tie_embeddings
    assert other.attention == AttentionConfig(kind="sliding", window=5)
    assert other.rope_theta == 1e6 and other.rope_scaling is not None


def test_qwen3_moe_gates_are_what_norm_topk_prob_says():
    """Raw top-k softmax weights differ from renormalised ones: the flag is honoured."""
    hf = _hf_model(**CASES["wide-heads"])
    ours = import_hf(hf)
    idx_BT = _idx()
    want = _hf_logits(hf, idx_BT)
    flipped = ours.cfg.model_copy(
        update={"moe": ours.cfg.moe.model_copy(update={"norm_topk": True})}
    )
    other = Transformer(flipped).eval()
    other.load_state_dict(ours.state_dict())
    assert (_ours_logits(other, idx_BT) - want).abs().max() > 1e-2


QWEN3_OURS = ModelConfig(
    d_model=32,
    n_layers=3,
    n_heads=4,
    n_kv_heads=2,
    d_head=12,
    ffn_hidden=48,
    vocab_size=64,
    max_seq_len=32,
    tie_embeddings=False,
    norm_eps=1e-6,
    qk_norm="rms",
    layer_pattern=[LayerSpec(mlp="moe"), LayerSpec(mlp="dense")],  # cycled: moe, dense, moe
    moe=MoEConfig(
        num_experts=4, top_k=2, expert_hidden=16, every=1, norm_topk=False, z_loss_coef=0.0
    ),
)


def test_ours_to_qwen3_moe_to_ours_is_bitwise(tmp_path):
    torch.manual_seed(0)
    model = Transformer(QWEN3_OURS)
    export_hf(model, tmp_path, "qwen3_moe")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["decoder_sparse_step"] == 1 and config["mlp_only_layers"] == [1]
    assert config["head_dim"] == 12 and config["norm_topk_prob"] is False
    back = import_hf(tmp_path)
    assert back.cfg == QWEN3_OURS and _bitwise_equal(back, model)
    assert back.blocks[0].attn.q_norm is not None  # the per-head norms came through


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mlp_only_layers", [0, 1], r"'mlp_only_layers' = \[0, 1\]: .* none of the 2 layers"),
        ("num_experts", 0, "'num_experts' = 0: a dense Qwen3"),
        ("decoder_sparse_step", 0, "'decoder_sparse_step' = 0: must be a positive integer"),
        ("attention_bias", True, "attention_bias"),
        ("hidden_act", "gelu", "hidden_act"),
    ],
)
def test_qwen3_moe_config_we_cannot_hold_names_the_field(field, value, message):
    hf = transformers.Qwen3MoeConfig(**BASE, num_hidden_layers=2).to_dict()
    with pytest.raises(ValueError, match=message):
        config_from_hf(hf | {field: value})


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"qk_norm": "none"}, "qk_norm"),
        ({"moe": {"score_func": "sigmoid"}}, r"moe\.score_func"),
        ({"moe": {"gate_on": "input"}}, r"moe\.gate_on"),
        ({"moe": {"num_shared_experts": 1}}, r"moe\.num_shared_experts"),
        ({"layer_pattern": [LayerSpec(rope=False)]}, "layer_pattern.0"),
        ({"attention": AttentionConfig(kind="chunked", chunk_size=4)}, "chunked"),
    ],
)
def test_qwen3_moe_export_refuses_what_it_cannot_hold(update, message):
    if "moe" in update:
        update = {"moe": QWEN3_OURS.moe.model_copy(update=update["moe"])}
    with pytest.raises(ValueError, match=message):
        config_to_hf(QWEN3_OURS.model_copy(update=update), "qwen3_moe", torch.float32)
