import json

import pytest
import torch

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.hf import config_from_hf, export_hf, import_hf
from superlab.model.transformer import Transformer

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'superlab[bench]')"
)

COMMON = dict(
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
)


def _hf_model(arch: str, **overrides):
    torch.manual_seed(0)
    if arch == "llama":
        config = transformers.LlamaConfig(**(COMMON | dict(rope_theta=500_000.0) | overrides))
        cls = transformers.LlamaForCausalLM
    else:
        kw = dict(num_local_experts=4, num_experts_per_tok=2, router_aux_loss_coef=0.5)
        config = transformers.MixtralConfig(**(COMMON | kw | overrides))
        cls = transformers.MixtralForCausalLM
    config._attn_implementation = "eager"
    model = cls(config).float().eval()
    with torch.no_grad():  # random norm gains so a wrong norm mapping shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def _hf_logits(model, idx_BT: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(idx_BT).logits


def _ours_logits(model: Transformer, idx_BT: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(idx_BT).logits_BTV


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500_000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,  # short: the scaling changes these frequencies
}

CASES = [
    ("llama", {}),
    ("llama", {"tie_word_embeddings": True}),
    ("llama", {"rope_parameters": LLAMA3_ROPE, "head_dim": 32}),  # Llama 3.1 RoPE, wide heads
    ("mixtral", {}),
    ("mixtral", {"sliding_window": 5}),  # shorter than the sequence: the window matters
]


@pytest.mark.parametrize(("arch", "overrides"), CASES)
def test_import_export_match_transformers(tmp_path, arch, overrides):
    hf = _hf_model(arch, **overrides)
    hf.save_pretrained(tmp_path / "hf")
    ours = import_hf(tmp_path / "hf")
    idx_BT = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1))
    want = _hf_logits(hf, idx_BT)
    torch.testing.assert_close(_ours_logits(ours, idx_BT), want, atol=1e-4, rtol=1e-4)
    assert ours.cfg.tie_embeddings == bool(overrides.get("tie_word_embeddings"))
    if "sliding_window" in overrides:
        assert ours.cfg.attention == AttentionConfig(kind="sliding", window=5)
    if "head_dim" in overrides:
        assert ours.cfg.d_head == ours.cfg.head_dim == 32
        assert ours.cfg.rope_scaling is not None and ours.cfg.rope_scaling.type == "llama3"

    ours.train()  # training mode: Mixtral's router aux settings must not change logits
    torch.testing.assert_close(_ours_logits(ours, idx_BT), want, atol=1e-4, rtol=1e-4)
    ours.eval()

    export_hf(ours, tmp_path / "back", arch)
    cls = type(hf)
    back = cls.from_pretrained(tmp_path / "back", attn_implementation="eager").eval()
    torch.testing.assert_close(_hf_logits(back, idx_BT), want, atol=1e-4, rtol=1e-4)
    theta = getattr(back.config, "rope_parameters", None) or {"rope_theta": back.config.rope_theta}
    assert theta["rope_theta"] == ours.cfg.rope_theta == (5e5 if arch == "llama" else 1e6)

    again = import_hf(back)  # an in-memory transformers model
    assert again.cfg == ours.cfg
    a, b = ours.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ours_to_hf_to_ours_is_bitwise(tmp_path):
    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_hidden=48,
        vocab_size=64,
        max_seq_len=32,
        tie_embeddings=False,
        moe=MoEConfig(num_experts=4, top_k=2, every=1, z_loss_coef=0.0),
    )
    torch.manual_seed(0)
    model = Transformer(cfg)
    export_hf(model, tmp_path, "mixtral")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["num_local_experts"] == 4 and config["sliding_window"] is None
    back = import_hf(tmp_path)
    assert back.cfg == cfg
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rope_scaling", {"rope_type": "yarn", "factor": 2.0}),
        ("rope_scaling", {"rope_type": "linear", "factor": 2.0, "attention_factor": 0.5}),
        ("attention_bias", True),
        ("mlp_bias", True),
        ("hidden_act", "gelu"),
        ("head_dim", 15),
        ("partial_rotary_factor", 0.5),
    ],
)
def test_unsupported_config_names_the_field(field, value):
    config = transformers.LlamaConfig(**COMMON).to_dict() | {field: value}
    with pytest.raises(ValueError, match=field):
        config_from_hf(config)


def test_unsupported_model_is_refused_on_export(tmp_path):
    base = dict(d_model=32, n_layers=2, n_heads=4, vocab_size=64, max_seq_len=32)
    moe = ModelConfig(**base, moe=MoEConfig(num_experts=4, top_k=2, every=2))
    with pytest.raises(ValueError, match=r"moe\.every"):
        export_hf(Transformer(moe), tmp_path, "mixtral")
    with pytest.raises(ValueError, match="Llama is dense"):
        export_hf(Transformer(moe), tmp_path, "llama")
    chunked = ModelConfig(**base, attention=AttentionConfig(kind="chunked", chunk_size=8))
    with pytest.raises(ValueError, match="chunked"):
        export_hf(Transformer(chunked), tmp_path, "llama")


@pytest.mark.parametrize(
    "extra",
    [
        {"qk_norm": "rms"},
        {"nope_temperature": {"floor_scale": 8.0}},
        {"layer_pattern": [{"attention": "full", "rope": False}]},
    ],
)
def test_export_refuses_what_llama_cannot_hold(extra):
    from superlab.config.recipe import ModelConfig
    from superlab.model.hf import config_to_hf

    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=64, **extra)
    with pytest.raises(ValueError, match=f"{next(iter(extra))} is set: llama has no equivalent"):
        config_to_hf(cfg, "llama", torch.float32)


@pytest.mark.parametrize(
    ("moe", "message"),
    [({"norm_topk": False}, r"moe\.norm_topk"), ({"gate_on": "input"}, r"moe\.gate_on")],
)
def test_mixtral_export_refuses_other_gating(moe, message):
    from superlab.model.hf import config_to_hf

    cfg = ModelConfig(d_model=32, n_heads=4, vocab_size=64, moe=MoEConfig(every=1, **moe))
    with pytest.raises(ValueError, match=message):
        config_to_hf(cfg, "mixtral", torch.float32)


def test_export_refuses_ntk_rope():
    from superlab.model.hf import config_to_hf

    cfg = ModelConfig(
        d_model=32, n_heads=4, vocab_size=64, rope_scaling={"type": "ntk", "factor": 2}
    )
    with pytest.raises(ValueError, match=r"rope_scaling\.type = 'ntk'"):
        config_to_hf(cfg, "llama", torch.float32)
