"""Llama 4 text (``Llama4ForCausalLM``) <-> superlab, checked against transformers itself."""

import json
import math

import pytest
import torch

from superlab.config.recipe import (
    AttentionConfig,
    LayerSpec,
    ModelConfig,
    MoEConfig,
    NopeTemperatureConfig,
    RopeScalingConfig,
)
from superlab.model.attention import l2_norm
from superlab.model.hf import config_from_hf, config_to_hf, export_hf, import_hf
from superlab.model.llama2c import interleaved_to_half
from superlab.model.rope import RotaryEmbedding, apply_rope
from superlab.model.transformer import Transformer

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'superlab[bench]')"
)
from transformers.models.llama4 import modeling_llama4 as hf_llama4  # noqa: E402

VOCAB, SEQ = 128, 24
# Scout's RoPE as shipped (low_freq_factor == high_freq_factor == 1, factor 16), with a short
# original context so the scaling changes frequencies of this tiny head dim.
SCOUT_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500_000.0,
    "factor": 16.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 1.0,
    "original_max_position_embeddings": 16,
}
BASE = dict(
    hidden_size=64,
    intermediate_size=32,
    intermediate_size_mlp=96,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=VOCAB,
    max_position_embeddings=64,
    num_local_experts=4,
    rms_norm_eps=1e-5,
)
CASES = {
    # 8 layers: NoPE at 3 and 7 (full attention, temperature), chunks of 8 < SEQ elsewhere,
    # MoE every other layer (1, 3, 5, 7), Scout's RoPE scaling.
    "scout-like": dict(
        num_hidden_layers=8,
        interleave_moe_layer_step=2,
        attention_chunk_size=8,
        floor_scale=4,  # the temperature grows within SEQ positions
        attn_scale=0.5,
        rope_parameters=SCOUT_ROPE,
    ),
    # Tied, head_dim != hidden / heads, top-2 sigmoid gates, MoE on an irregular set of
    # layers, no QK-norm, no temperature, plain RoPE.
    "variants": dict(
        num_hidden_layers=6,
        head_dim=24,
        tie_word_embeddings=True,
        num_experts_per_tok=2,
        moe_layers=[0, 5],
        attention_chunk_size=5,
        use_qk_norm=False,
        attn_temperature_tuning=False,
    ),
}


def _hf_model(**overrides):
    torch.manual_seed(0)
    config = transformers.Llama4TextConfig(**(BASE | overrides))
    config._attn_implementation = "eager"  # transformers' sdpa path is not bit-exact
    model = transformers.Llama4ForCausalLM(config).float().eval()
    with torch.no_grad():  # weights large enough for peaked attention and decided routing
        for name, p in model.named_parameters():
            p.uniform_(0.5, 1.5) if "norm" in name else p.normal_(0.0, 0.1)
    return model


def _idx() -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, SEQ), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def _hf_logits(model, idx_BT: torch.Tensor) -> torch.Tensor:
    return model(idx_BT).logits.float()


@torch.no_grad()
def _ours_logits(model: Transformer, idx_BT: torch.Tensor) -> torch.Tensor:
    return model(idx_BT).logits_BTV.float()


def _bitwise_equal(a: Transformer, b: Transformer) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("case", sorted(CASES))
def test_llama4_matches_transformers_both_ways(tmp_path, case):
    hf = _hf_model(**CASES[case])
    ours = import_hf(hf)
    idx_BT = _idx()
    want = _hf_logits(hf, idx_BT)
    torch.testing.assert_close(_ours_logits(ours, idx_BT), want, atol=1e-4, rtol=1e-4)
    ours.train()  # training mode changes nothing in the forward
    torch.testing.assert_close(_ours_logits(ours, idx_BT), want, atol=1e-4, rtol=1e-4)
    ours.eval()

    export_hf(ours, tmp_path, "llama4")
    back = transformers.Llama4ForCausalLM.from_pretrained(tmp_path, attn_implementation="eager")
    torch.testing.assert_close(_hf_logits(back.eval(), idx_BT), want, atol=1e-4, rtol=1e-4)
    again = import_hf(back)
    assert again.cfg == ours.cfg and _bitwise_equal(again, ours)


def test_llama4_layers_map_to_our_pattern():
    cfg = config_from_hf(_hf_model(**CASES["scout-like"]).config.to_dict())[1]
    chunked = LayerSpec(attention="chunked", chunk_size=8)
    assert cfg.layer_pattern == [chunked, chunked, chunked, LayerSpec(rope=False)]
    assert [cfg.is_moe_layer(i) for i in range(8)] == [False, True] * 4
    assert cfg.qk_norm == "l2" and cfg.d_head is None and cfg.ffn_hidden == 96
    assert cfg.nope_temperature == NopeTemperatureConfig(floor_scale=4.0, attn_scale=0.5)
    assert cfg.rope_scaling == RopeScalingConfig(
        type="llama3", factor=16.0, original_max_seq_len=16, high_freq_factor=1.0
    )
    moe = cfg.moe
    assert moe is not None and (moe.num_experts, moe.top_k, moe.expert_hidden) == (4, 1, 32)
    assert (moe.score_func, moe.norm_topk, moe.gate_on, moe.num_shared_experts) == (
        "sigmoid",
        False,
        "input",
        1,
    )
    other = config_from_hf(_hf_model(**CASES["variants"]).config.to_dict())[1]
    assert other.d_head == 24 and other.tie_embeddings and other.qk_norm == "none"
    assert [other.is_moe_layer(i) for i in range(6)] == [True] + [False] * 4 + [True]
    assert other.nope_temperature is None and other.rope_scaling is None


def _variant(ours: Transformer, state=None, **update) -> Transformer:
    model = Transformer(ours.cfg.model_copy(update=update)).eval()
    model.load_state_dict(state or ours.state_dict())
    return model


def test_each_llama4_feature_is_exercised():
    """Dropping any one faithful detail moves the logits far past the 1e-4 tolerance."""
    hf = _hf_model(**CASES["scout-like"])
    ours = import_hf(hf)
    idx_BT = _idx()
    want = _hf_logits(hf, idx_BT)
    unpermuted = ours.state_dict()  # HF's interleaved q/k rows, as if not converted
    for name, tensor in hf.state_dict().items():
        if "q_proj" in name or "k_proj" in name:
            unpermuted[
                name.replace("model.layers", "blocks")
                .replace("self_attn.", "attn.w")
                .replace("_proj", "")
            ] = tensor
    assert not torch.equal(unpermuted["blocks.0.attn.wq.weight"], ours.blocks[0].attn.wq.weight)
    moe = ours.cfg.moe
    variants = {
        "no permutation": _variant(ours, unpermuted),
        "no temperature": _variant(ours, nope_temperature=None),
        "no chunks": _variant(
            ours, layer_pattern=[LayerSpec(), LayerSpec(), LayerSpec(), LayerSpec(rope=False)]
        ),
        "no QK-norm": _variant(ours, qk_norm="none"),
        "no RoPE scaling": _variant(ours, rope_scaling=None),
        "output gating": _variant(ours, moe=moe.model_copy(update={"gate_on": "output"})),
    }
    for name, model in variants.items():
        gap = (_ours_logits(model, idx_BT) - want).abs().max().item()
        assert gap > 1e-2, f"{name}: {gap}"


def test_l2_qk_norm_commutes_with_the_rope_permutation():
    """transformers' interleaved RoPE then L2 norm = ours on permuted rows, permuted back."""
    torch.manual_seed(0)
    B, T, H, C = 2, 12, 3, 16
    x_BTHC = torch.randn(B, T, H, C) * 3
    config = transformers.Llama4TextConfig(**BASE, num_hidden_layers=1)
    assert config.head_dim == C
    freqs_1Tc = hf_llama4.Llama4TextRotaryEmbedding(config)(x_BTHC, torch.arange(T)[None])
    hf_q, _ = hf_llama4.apply_rotary_emb(x_BTHC, x_BTHC, freqs_1Tc)
    hf_q = hf_llama4.Llama4TextL2Norm(1e-5)(hf_q)  # (B, T, H, C), interleaved layout

    # Ours: permute each head's dims as interleaved_to_half permutes projection rows.
    perm_C = interleaved_to_half(torch.arange(C, dtype=torch.float32)[:, None], 1)[:, 0].long()
    x_BHTC = x_BTHC[..., perm_C].transpose(1, 2)
    cos_TC, sin_TC = RotaryEmbedding(C, T, theta=config.rope_parameters["rope_theta"])(T)
    ours = l2_norm(apply_rope(x_BHTC, cos_TC, sin_TC), 1e-5).transpose(1, 2)
    torch.testing.assert_close(ours, hf_q[..., perm_C], atol=1e-6, rtol=1e-6)
    # The norm alone commutes with any permutation of the head dim (sum order aside).
    torch.testing.assert_close(
        l2_norm(x_BTHC[..., perm_C], 1e-5), l2_norm(x_BTHC, 1e-5)[..., perm_C], atol=1e-6, rtol=0
    )


def _routers(hf) -> list:
    return [m for m in hf.modules() if isinstance(m, hf_llama4.Llama4Router)]


def test_llama4_bf16_with_routing_fixed_to_the_fp32_choice():
    """bf16 flips ~1-2% of top-1 choices (near-ties); with fp32's choices imposed on both
    models, ours is as close to the fp32 logits as transformers' own bf16 forward is."""
    hf = _hf_model(**CASES["scout-like"])
    idx_BT = torch.randint(0, VOCAB, (4, SEQ), generator=torch.Generator().manual_seed(1))
    k = hf.config.num_experts_per_tok
    chosen = {}  # router module -> fp32 top-k expert ids, (T, K)
    hooks = [
        r.register_forward_hook(lambda m, args, out: chosen.__setitem__(m, out[1].topk(k).indices))
        for r in _routers(hf)
    ]
    ref = _hf_logits(hf, idx_BT)
    for h in hooks:
        h.remove()
    ours32 = import_hf(hf)
    seen = []  # our fp32 selection, in layer order, must be transformers'

    def recording(select):
        def select_and_record(scores_TE: torch.Tensor) -> torch.Tensor:
            seen.append(select(scores_TE))
            return seen[-1]

        return select_and_record

    for block in ours32.blocks:
        if hasattr(block.mlp, "routing"):
            block.mlp.routing.select = recording(block.mlp.routing.select)
    _ours_logits(ours32, idx_BT)
    fixed = [chosen[r] for r in _routers(hf)]
    assert all(torch.equal(a, b) for a, b in zip(seen, fixed, strict=True))

    hf16 = hf.to(torch.bfloat16)
    ours16 = import_hf(hf16)
    assert ours16.tok_emb.weight.dtype == torch.bfloat16

    def force(module, args, out):  # Llama4Router.forward with the top-k replaced
        logits = out[1]
        ids = chosen[module]
        scores = torch.full_like(logits, -math.inf).scatter_(1, ids, logits.gather(1, ids))
        return torch.sigmoid(scores.float()).to(scores.dtype), logits

    for router in _routers(hf16):
        router.register_forward_hook(force)
    moes = [b.mlp for b in ours16.blocks if hasattr(b.mlp, "routing")]
    for moe, ids in zip(moes, fixed, strict=True):
        moe.routing.select = lambda s, ids=ids: ids
    theirs, ours = _hf_logits(hf16, idx_BT), _ours_logits(ours16, idx_BT)
    err_theirs, err_ours = (theirs - ref).abs(), (ours - ref).abs()
    assert err_theirs.max() > 1e-3  # bf16 really rounds
    assert err_ours.mean() <= 1.25 * err_theirs.mean()
    assert err_ours.max() <= 1.5 * err_theirs.max()
    # bf16 keeps 8 significant bits: each rounding moves a logit of ~3 by up to ~0.01.
    torch.testing.assert_close(ours, theirs, atol=0.1, rtol=0.05)


LLAMA4_OURS = ModelConfig(
    d_model=32,
    n_layers=4,
    n_heads=4,
    n_kv_heads=2,
    d_head=12,
    ffn_hidden=48,
    vocab_size=64,
    max_seq_len=32,
    tie_embeddings=False,
    qk_norm="l2",
    nope_temperature=NopeTemperatureConfig(floor_scale=8.0, attn_scale=0.2),
    rope_scaling=RopeScalingConfig(type="linear", factor=2.0),
    layer_pattern=[
        LayerSpec(attention="chunked", chunk_size=4),
        LayerSpec(attention="chunked", chunk_size=4),
        LayerSpec(attention="chunked", chunk_size=4),
        LayerSpec(rope=False),
    ],
    moe=MoEConfig(
        num_experts=4,
        top_k=1,
        expert_hidden=16,
        num_shared_experts=1,
        every=2,
        score_func="sigmoid",
        norm_topk=False,
        gate_on="input",
        z_loss_coef=0.0,
    ),
)


def test_ours_to_llama4_to_ours_is_bitwise(tmp_path):
    torch.manual_seed(0)
    model = Transformer(LLAMA4_OURS)
    export_hf(model, tmp_path, "llama4")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["no_rope_layers"] == [1, 1, 1, 0] and config["moe_layers"] == [1, 3]
    assert config["layer_types"] == ["chunked_attention"] * 3 + ["full_attention"]
    assert config["rope_parameters"]["rope_type"] == "linear" and config["floor_scale"] == 8
    back = import_hf(tmp_path)
    assert back.cfg == LLAMA4_OURS and _bitwise_equal(back, model)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("layer_types", ["sliding_attention"] * 2, "layer_types"),
        ("no_rope_layers", [1], "no_rope_layers"),
        ("attention_bias", True, "attention_bias"),
        ("rope_parameters", {"rope_type": "yarn", "factor": 2.0}, r"rope_parameters\.rope_type"),
        ("rope_parameters", {"rope_type": "llama3", "factor": 2.0}, "high_freq_factor"),
        ("model_type", "llama4", "llama4_text"),  # the multimodal wrapper
    ],
)
def test_llama4_config_we_cannot_hold_names_the_field(field, value, message):
    hf = transformers.Llama4TextConfig(**BASE, num_hidden_layers=2).to_dict() | {field: value}
    if field == "model_type":
        hf["architectures"] = ["Llama4ForConditionalGeneration"]
    with pytest.raises(ValueError, match=message):
        config_from_hf(hf)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"qk_norm": "rms"}, "qk_norm"),
        ({"moe": {"score_func": "softmax"}}, r"moe\.score_func"),
        ({"moe": {"norm_topk": True}}, r"moe\.norm_topk"),
        ({"moe": {"gate_on": "output"}}, r"moe\.gate_on"),
        ({"moe": {"num_shared_experts": 0}}, r"moe\.num_shared_experts"),
        (
            {"attention": AttentionConfig(kind="sliding", window=4), "layer_pattern": None},
            "sliding",
        ),
        (
            {
                "layer_pattern": [
                    LayerSpec(attention="chunked", chunk_size=4),
                    LayerSpec(attention="chunked", chunk_size=8),
                ]
            },
            "chunk sizes",
        ),
        ({"nope_temperature": NopeTemperatureConfig(floor_scale=8.5)}, "floor_scale"),
    ],
)
def test_llama4_export_refuses_what_it_cannot_hold(update, message):
    if "moe" in update:
        update = {"moe": LLAMA4_OURS.moe.model_copy(update=update["moe"])}
    cfg = LLAMA4_OURS.model_copy(update=update)
    with pytest.raises(ValueError, match=message):
        config_to_hf(cfg, "llama4", torch.float32)
