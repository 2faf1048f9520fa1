"""RoPE frequencies, plain and scaled (linear, NTK-aware, Llama 3.1), pinned by hand."""

import math

import pytest
import torch

from superlab.config.recipe import RopeScalingConfig
from superlab.model.rope import RotaryEmbedding, inv_freq

# head dim 8, theta 10^4: plain frequencies 10^4^(-i/4) = 1, 0.1, 0.01, 0.001.
PLAIN = [1.0, 0.1, 0.01, 0.001]


def test_plain_inv_freq():
    torch.testing.assert_close(inv_freq(8, 10_000.0), torch.tensor(PLAIN))


def test_linear_divides_every_frequency():
    got = inv_freq(8, 10_000.0, RopeScalingConfig(type="linear", factor=4))
    torch.testing.assert_close(got, torch.tensor([0.25, 0.025, 0.0025, 0.00025]))


def test_linear_position_t_equals_plain_position_t_over_factor():
    plain = RotaryEmbedding(8, 32)
    scaled = RotaryEmbedding(8, 32, scaling=RopeScalingConfig(type="linear", factor=4))
    torch.testing.assert_close(scaled(32)[0][::4], plain(8)[0])


def test_ntk_raises_the_base():
    # theta' = 10^4 * 4^(8/6); frequency i = theta'^(-i/4) = 10^-i * 4^(-i/3).
    got = inv_freq(8, 10_000.0, RopeScalingConfig(type="ntk", factor=4))
    want = [1.0, 0.1 / 4 ** (1 / 3), 0.01 / 4 ** (2 / 3), 0.001 / 4]
    torch.testing.assert_close(got, torch.tensor(want))


def test_llama3_piecewise():
    # original 64, low 1, high 4: wavelengths 2 pi / f = 6.3, 62.8, 628, 6283 against the
    # edges 64 / 4 = 16 and 64 / 1 = 64. 6.3 < 16 kept; 628 and 6283 > 64 divided by 8;
    # 62.8 between: s = (64 / 62.83 - 1) / (4 - 1), f = (1 - s) * 0.1 / 8 + s * 0.1.
    cfg = RopeScalingConfig(type="llama3", factor=8, original_max_seq_len=64)
    s = (64 / (2 * math.pi / 0.1) - 1) / 3
    want = [1.0, (1 - s) * 0.1 / 8 + s * 0.1, 0.01 / 8, 0.001 / 8]
    got = inv_freq(8, 10_000.0, cfg)
    torch.testing.assert_close(got, torch.tensor(want))
    assert got[1].item() == pytest.approx(0.013042, abs=1e-6)  # transformers' llama3 gives this


def test_llama3_matches_transformers_when_installed():
    rope_utils = pytest.importorskip(
        "transformers.modeling_rope_utils", reason="transformers not installed"
    )
    from transformers import LlamaConfig

    scaling = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    hf = LlamaConfig(
        hidden_size=512,
        num_attention_heads=4,
        head_dim=128,
        rope_theta=500_000.0,
        rope_scaling={"rope_type": "llama3", "original_max_position_embeddings": 8192, **scaling},
    )
    want, _ = rope_utils.ROPE_INIT_FUNCTIONS["llama3"](hf, "cpu")
    ours = RopeScalingConfig(type="llama3", original_max_seq_len=8192, **scaling)
    torch.testing.assert_close(inv_freq(128, 500_000.0, ours), want.float())
