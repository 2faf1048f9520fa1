"""The vision tower's counts: parameters equal the module's, FLOPs equal torch's count."""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from superlab.config.recipe import ModelConfig
from superlab.config.vision import VisionConfig
from superlab.model.counts import param_count, vision_flops_per_image, vision_params
from superlab.model.transformer import Transformer
from superlab.model.vision.tower import VisionTower

VISION = VisionConfig(
    image_size=24,
    patch_size=4,
    d_model=32,
    n_layers=3,
    n_heads=2,
    ffn_hidden=80,
    projector_dim=48,
    image_token_id=60,
    image_start_id=61,
    image_end_id=62,
)


def _cfg(vision: VisionConfig | None) -> ModelConfig:
    base = dict(d_model=40, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, max_seq_len=64)
    return ModelConfig(**base, vision=vision)


def test_params_equal_the_modules_and_stay_out_of_active() -> None:
    with_tower, text_only = param_count(_cfg(VISION)), param_count(_cfg(None))
    assert with_tower["total"] == Transformer(_cfg(VISION)).num_params()
    assert with_tower["vision"] == sum(p.numel() for p in VisionTower(VISION, 40).parameters())
    assert with_tower["vision"] == vision_params(VISION, 40)
    assert with_tower["total"] - text_only["total"] == with_tower["vision"]
    assert with_tower["active"] == text_only["active"]  # a text token skips the tower
    assert text_only["vision"] == 0


def test_flops_per_image_equal_torchs_count_of_the_forward() -> None:
    tower = VisionTower(VISION, 40).eval()
    pixels = torch.rand(3, VISION.channels, VISION.image_size, VISION.image_size)
    # The math backend runs attention as matmuls, which the counter sees.
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        tower(pixels)
    flops = vision_flops_per_image(VISION, 40)
    assert counter.get_total_flops() == flops["forward"] * 3
    assert flops["forward"] == flops["matmul"] + flops["attention"]
    assert flops["total"] == 3 * flops["forward"]
