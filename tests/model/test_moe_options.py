"""MoE recipe options: input gating (Llama 4), raw top-k weights, expert choice's mode."""

import math

import pytest
import torch
import torch.nn.functional as F

from superlab.config.recipe import ModelConfig, MoEConfig
from superlab.model.moe import MoE
from superlab.model.routers import AuxFreeRouter, ExpertChoiceRouter, TokenChoiceRouter


def _moe(**moe) -> MoE:
    cfg = ModelConfig(d_model=16, n_heads=2, vocab_size=10, moe=MoEConfig(expert_hidden=24, **moe))
    torch.manual_seed(0)
    layer = MoE(cfg)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return layer


def _swiglu(moe: MoE, e: int, x_D: torch.Tensor) -> torch.Tensor:
    return moe.w2_EDF[e] @ (F.silu(moe.w1_EFD[e] @ x_D) * (moe.w3_EFD[e] @ x_D))


def test_input_gating_scales_what_the_expert_sees():
    """Llama 4: y = shared(x) + expert_e(sigmoid(l_e) x), e the top-1 of the raw logits."""
    llama4 = dict(top_k=1, score_func="sigmoid", norm_topk=False, num_shared_experts=1)
    moe = _moe(gate_on="input", **llama4)
    torch.manual_seed(1)
    x_BLD = torch.randn(2, 5, 16)
    want = torch.zeros_like(x_BLD)
    for b in range(2):
        for t in range(5):
            x_D = x_BLD[b, t]
            logits_E = moe.router(x_D)
            e = int(logits_E.argmax())
            want[b, t] = moe.shared(x_D) + _swiglu(moe, e, torch.sigmoid(logits_E[e]) * x_D)
    torch.testing.assert_close(moe(x_BLD), want, atol=1e-5, rtol=1e-5)
    # SwiGLU is not linear: gating the output instead is a different layer.
    out_gated = _moe(gate_on="output", **llama4)
    assert (out_gated(x_BLD) - want).abs().max() > 1e-2


def test_input_gating_trains_the_router():
    moe = _moe(gate_on="input", top_k=1, score_func="sigmoid", norm_topk=False)
    moe(torch.randn(2, 5, 16)).pow(2).sum().backward()
    assert moe.router.weight.grad is not None and moe.router.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("router_cls", [TokenChoiceRouter, AuxFreeRouter])
def test_norm_topk_false_gates_with_the_raw_scores(router_cls):
    logits_11E = torch.tensor([[[2.0, 1.0, 0.0, -1.0]]])
    name = "aux_free" if router_cls is AuxFreeRouter else "token_choice"
    raw = router_cls(MoEConfig(num_experts=4, top_k=2, router=name, norm_topk=False))
    p_E = logits_11E[0, 0].softmax(-1)
    torch.testing.assert_close(raw(logits_11E).weight_N, p_E[:2])  # Qwen3-MoE's default
    normed = router_cls(MoEConfig(num_experts=4, top_k=2, router=name))
    torch.testing.assert_close(normed(logits_11E).weight_N, p_E[:2] / p_E[:2].sum())
    e = math.e
    assert math.isclose(normed(logits_11E).weight_N[0].item(), e / (e + 1), rel_tol=1e-6)


def test_expert_choice_mode_comes_from_the_recipe():
    assert ExpertChoiceRouter(MoEConfig(router="expert_choice")).causal
    batch = _moe(num_experts=4, top_k=2, router="expert_choice", expert_choice_mode="batch")
    assert not batch.routing.causal
    torch.manual_seed(0)
    batch(torch.randn(2, 6, 16))
    assert batch.stats["tokens_per_expert"] == [6, 6, 6, 6]  # top-C over the batch, C = 6
    causal = _moe(num_experts=4, top_k=2, router="expert_choice")
    torch.manual_seed(0)
    causal(torch.randn(2, 6, 16))  # no past yet: each token's own top-2, uneven per expert
    assert sum(causal.stats["tokens_per_expert"]) == 24
    assert causal.stats["tokens_per_expert"] != [6, 6, 6, 6]


def test_batch_mode_from_the_recipe_leaks_the_future():
    """The recipe switch reaches the router: batch mode lets later tokens evict earlier ones."""
    moe = _moe(
        num_experts=4,
        top_k=1,
        router="expert_choice",
        score_func="sigmoid",
        expert_choice_mode="batch",
    )
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(4, 16))  # logit e = feature e
    torch.manual_seed(0)
    x_1LD = torch.randn(1, 8, 16)
    future_1LD = x_1LD.clone()
    future_1LD[0, 6:, :4] = 20.0  # later tokens now top every expert (C = 2)
    with torch.no_grad():
        assert moe(future_1LD)[:, :6].abs().max() == 0
        assert moe(x_1LD)[:, :6].abs().max() > 0
