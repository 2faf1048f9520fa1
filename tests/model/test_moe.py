import math

import torch
import torch.nn.functional as F

from superlab.config.recipe import ModelConfig, MoEConfig
from superlab.model.moe import MoE


def _moe(num_experts=4, top_k=2, shared=0, d_model=16, hidden=24) -> MoE:
    cfg = ModelConfig(
        d_model=d_model,
        n_heads=2,
        vocab_size=10,
        moe=MoEConfig(
            num_experts=num_experts,
            top_k=top_k,
            expert_hidden=hidden,
            num_shared_experts=shared,
        ),
    )
    torch.manual_seed(0)
    moe = MoE(cfg)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return moe


def _naive(moe: MoE, x_BTD: torch.Tensor) -> torch.Tensor:
    """Route and run one token at a time."""
    out = torch.zeros_like(x_BTD)
    K = moe.moe_cfg.top_k
    for b in range(x_BTD.shape[0]):
        for t in range(x_BTD.shape[1]):
            x_D = x_BTD[b, t]
            probs_E = moe.router(x_D).softmax(-1)
            w_K, e_K = probs_E.topk(K)
            w_K = w_K / w_K.sum()
            for w, e in zip(w_K, e_K.tolist(), strict=True):
                h = F.silu(moe.w1_EFD[e] @ x_D) * (moe.w3_EFD[e] @ x_D)
                out[b, t] += w * (moe.w2_EDF[e] @ h)
            if moe.shared is not None:
                out[b, t] += moe.shared(x_D)
    return out


def test_dispatch_equals_naive_loop():
    for k, shared in [(1, 0), (2, 0), (3, 2)]:
        moe = _moe(top_k=k, shared=shared)
        x_BTD = torch.randn(3, 7, 16)
        torch.testing.assert_close(moe(x_BTD), _naive(moe, x_BTD), atol=1e-5, rtol=1e-4)
        assert sum(moe.stats["tokens_per_expert"]) == 3 * 7 * k


def test_aux_loss_hand_computed():
    moe = _moe(num_experts=2, top_k=1, d_model=8, hidden=4)
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(2, 8))  # logits = the first two features
    x_1TD = torch.zeros(1, 3, 8)
    x_1TD[0, :, :2] = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    moe(x_1TD)

    def softmax(a, b):
        return [
            math.exp(a) / (math.exp(a) + math.exp(b)),
            math.exp(b) / (math.exp(a) + math.exp(b)),
        ]

    probs = [softmax(2, 0), softmax(0, 1), softmax(1, 0)]
    f = [2 / 3, 1 / 3]  # experts chosen: 0, 1, 0
    p = [sum(pr[e] for pr in probs) / 3 for e in range(2)]
    balance = 2 * (f[0] * p[0] + f[1] * p[1])
    z = sum(math.log(math.exp(a) + math.exp(b)) ** 2 for a, b in [(2, 0), (0, 1), (1, 0)]) / 3
    assert moe.stats["tokens_per_expert"] == [2, 1]
    assert math.isclose(moe.stats["balance_loss"], balance, rel_tol=1e-6)
    assert math.isclose(moe.stats["z_loss"], z, rel_tol=1e-6)
    assert math.isclose(moe.aux_loss.item(), 0.01 * balance + 0.001 * z, rel_tol=1e-6)
    assert math.isclose(moe.stats["max_load"], 2 / 1.5)
    assert moe.stats["dropped_fraction"] == 0.0


def test_balanced_router_gives_balance_loss_one():
    moe = _moe(num_experts=4, top_k=2)
    with torch.no_grad():
        moe.router.weight.zero_()  # uniform probabilities; ties go to the first experts
    moe(torch.randn(1, 8, 16))
    assert math.isclose(moe.stats["balance_loss"], 1.0, rel_tol=1e-6)
    assert math.isclose(moe.stats["router_entropy"], math.log(4), rel_tol=1e-6)


def test_grads_reach_every_used_expert_and_the_router():
    moe = _moe(num_experts=4, top_k=2)
    y = moe(torch.randn(4, 16, 16))
    (y.pow(2).sum() + moe.aux_loss).backward()
    counts = moe.stats["tokens_per_expert"]
    assert all(c > 0 for c in counts)
    for e in range(4):
        for w in (moe.w1_EFD, moe.w2_EDF, moe.w3_EFD):
            assert w.grad[e].abs().sum() > 0
    assert moe.router.weight.grad.abs().sum() > 0
