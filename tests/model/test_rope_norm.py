import torch

from superlab.model.norm import RMSNorm
from superlab.model.rope import RotaryEmbedding, apply_rope


def test_rope_preserves_norm_and_depends_on_offset_only():
    torch.manual_seed(0)
    rope = RotaryEmbedding(8, 16, theta=10_000.0)
    cos, sin = rope(16)
    q_C, k_C = torch.randn(8), torch.randn(8)
    q_11TC = apply_rope(q_C.expand(1, 1, 16, 8), cos, sin)
    k_11TC = apply_rope(k_C.expand(1, 1, 16, 8), cos, sin)
    torch.testing.assert_close(q_11TC.norm(dim=-1), q_C.norm().expand(1, 1, 16))
    # <q_t, k_s> depends only on t - s.
    dots = q_11TC[0, 0] @ k_11TC[0, 0].T
    torch.testing.assert_close(dots[5, 3], dots[12, 10])
    torch.testing.assert_close(dots[7, 7], q_C @ k_C)


def test_rope_grows_past_its_cache():
    rope = RotaryEmbedding(4, 8)
    cos, _ = rope(20)
    assert cos.shape == (20, 4)


def test_rmsnorm_unit_rms():
    x = torch.randn(3, 5, 16) * 7
    y = RMSNorm(16, eps=1e-8)(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3, 5), atol=1e-4, rtol=1e-4)
