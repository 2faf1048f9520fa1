"""Llama4ForConditionalGeneration (text + vision tower + projector) <-> superlab."""

import json

import pytest
import torch

from superlab.model.hf import config_from_hf, export_hf, import_hf

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'superlab[bench]')"
)
from transformers.models.llama4 import modeling_llama4 as hf_llama4  # noqa: E402

IMG, BOI, EOI = 120, 121, 122
TEXT = dict(
    hidden_size=64,
    intermediate_size=32,
    intermediate_size_mlp=96,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=128,
    max_position_embeddings=64,
    num_local_experts=4,
    num_hidden_layers=4,
    attention_chunk_size=8,  # shorter than the prompt: chunks cross the images
    interleave_moe_layer_step=2,
    floor_scale=4,
    attn_scale=0.5,
)
VISION = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,  # hidden / 0.5^2, as transformers' adapter needs
    image_size=16,
    patch_size=4,
    vision_output_dim=48,
    projector_input_dim=48,
    projector_output_dim=48,
)
# Two images of 4 tokens each (a 4x4 patch grid, pixel-shuffled 2x2), text around them.
PROMPT = [1, 5, BOI] + [IMG] * 4 + [EOI, 7, 8, 9, BOI] + [IMG] * 4 + [EOI, 3, 4]


def _config(**vision):
    return transformers.Llama4Config(
        text_config=TEXT,
        vision_config=VISION | vision,
        image_token_index=IMG,
        boi_token_index=BOI,
        eoi_token_index=EOI,
    )


def _hf_model():
    torch.manual_seed(0)
    config = _config()
    config._attn_implementation = "eager"
    model = hf_llama4.Llama4ForConditionalGeneration(config).float().eval()
    with torch.no_grad():  # random norm gains and biases so a wrong mapping shows
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    return model


def test_two_image_prompt_matches_transformers_and_round_trips(tmp_path):
    hf = _hf_model()
    idx_BT = torch.tensor([PROMPT])
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = hf(input_ids=idx_BT, pixel_values=pixels).logits
    hf.save_pretrained(tmp_path / "hf")
    ours = import_hf(tmp_path / "hf")
    v = ours.cfg.vision
    assert v is not None and (v.image_token_id, v.image_start_id, v.image_end_id) == (IMG, BOI, EOI)
    assert (v.d_model, v.tokens_per_image, v.projector_dim) == (32, 4, 48)
    with torch.no_grad():
        got = ours(idx_BT, pixels_NCHW=pixels).logits_BTV
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)

    export_hf(ours, tmp_path / "back", "llama4")
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert config["architectures"] == ["Llama4ForConditionalGeneration"]
    back = hf_llama4.Llama4ForConditionalGeneration.from_pretrained(
        tmp_path / "back", attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        again = back(input_ids=idx_BT, pixel_values=pixels).logits
    torch.testing.assert_close(again, want, atol=1e-4, rtol=1e-4)
    twice = import_hf(back)
    assert twice.cfg == ours.cfg
    a, b = ours.state_dict(), twice.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"intermediate_size": 96}, "vision_config.intermediate_size"),
        ({"vision_output_dim": 40}, "vision_config.vision_output_dim"),
        ({"hidden_act": "silu"}, "vision_config.hidden_act"),
        ({"multi_modal_projector_bias": True}, "vision_config.multi_modal_projector_bias"),
    ],
)
def test_unsupported_vision_config_names_the_field(change, field):
    config = _config().to_dict()
    config["vision_config"] |= change
    with pytest.raises(ValueError, match=field):
        config_from_hf(config)


def test_export_refuses_what_transformers_cannot_run(tmp_path):
    ours = import_hf(_hf_model())
    assert ours.cfg.vision is not None
    ours.cfg.vision.ffn_hidden = 64
    with pytest.raises(ValueError, match=r"vision\.ffn_hidden = 64"):
        export_hf(ours, tmp_path, "llama4")
