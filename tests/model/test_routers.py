import copy
import math

import torch

from superlab.config.recipe import ModelConfig, MoEConfig
from superlab.model.moe import MoE
from superlab.model.routers import AuxFreeRouter, TokenChoiceRouter, capacity


def _moe(d_model=16, **moe) -> MoE:
    cfg = ModelConfig(
        d_model=d_model, n_heads=2, vocab_size=10, moe=MoEConfig(expert_hidden=24, **moe)
    )
    torch.manual_seed(0)
    layer = MoE(cfg)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return layer


def _logits(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_softmax_and_sigmoid_gating_weights():
    logits_11E = _logits([[[2.0, 1.0, 0.0, -1.0]]])
    soft = TokenChoiceRouter(MoEConfig(num_experts=4, top_k=2))(logits_11E)
    sig = TokenChoiceRouter(MoEConfig(num_experts=4, top_k=2, score_func="sigmoid"))(logits_11E)
    assert soft.token_N.tolist() == sig.token_N.tolist() == [0, 0]
    e = math.e
    torch.testing.assert_close(soft.weight_N, torch.tensor([e / (e + 1), 1 / (e + 1)]))
    s2, s1 = 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-1))
    torch.testing.assert_close(sig.weight_N, torch.tensor([s2 / (s1 + s2), s1 / (s1 + s2)]))


def test_aux_free_bias_selects_but_does_not_gate():
    router = AuxFreeRouter(MoEConfig(num_experts=4, top_k=2, score_func="sigmoid"))
    router.bias_E[3] = 10.0  # expert 3 now always wins a place
    r = router(_logits([[[2.0, 1.0, 0.0, -1.0]]]))
    s = [1 / (1 + math.exp(-v)) for v in (2.0, -1.0)]
    assert r.counts_E.tolist() == [1, 0, 0, 1]
    torch.testing.assert_close(r.weight_N, torch.tensor([s[0], s[1]]) / sum(s))
    assert "bias_E" in router.state_dict() and "load_E" not in router.state_dict()


def test_capacity_drops_exactly_what_it_allows():
    # B=2, L=3, K=1, E=2, factor 1: C = ceil(1 * 6 * 1 / 2) = 3. Five tokens want expert 0.
    moe = _moe(d_model=8, num_experts=2, top_k=1, capacity_factor=1.0)
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(2, 8))
    x_BLD = torch.zeros(2, 3, 8)
    x_BLD[..., 0] = 1.0
    x_BLD[1, 2, :2] = torch.tensor([0.0, 1.0])  # token (b=1, l=2) wants expert 1
    x_BLD[..., 2] = torch.arange(1, 7.0).view(2, 3)  # distinct inputs, non-zero outputs
    y_BLD = moe(x_BLD)
    assert capacity(1.0, 6, 1, 2) == 3
    assert moe.stats["tokens_per_expert"] == [5, 1]
    assert moe.stats["dropped_fraction"] == 2 / 6
    # Position-major priority (l=0: b0, b1; l=1: b0, b1; l=2: b0): expert 0 keeps
    # (0,0), (1,0), (0,1); drops (1,1) and (0,2). The dropped rows are exactly zero.
    zero_BL = (y_BLD == 0).all(-1)
    assert zero_BL.tolist() == [[False, False, True], [False, True, False]]


def test_kept_slots_per_expert_is_min_of_count_and_capacity():
    for factor in (0.5, 1.0, 1.25):
        cfg = MoEConfig(num_experts=4, top_k=2, capacity_factor=factor)
        torch.manual_seed(1)
        logits_BLE = torch.randn(3, 5, 4) + torch.tensor([2.0, 1.0, 0.0, 0.0])  # skewed
        r = TokenChoiceRouter(cfg)(logits_BLE)
        C = math.ceil(factor * 15 * 2 / 4)
        routed = torch.tensor(r.stats["tokens_per_expert"])
        assert r.counts_E.tolist() == routed.clamp(max=C).tolist()
        assert r.token_N.numel() == r.counts_E.sum().item()
        assert math.isclose(r.stats["dropped_fraction"], 1 - r.counts_E.sum().item() / 30)


def test_no_capacity_keeps_every_slot():
    r = TokenChoiceRouter(MoEConfig(num_experts=4, top_k=2))(torch.randn(2, 5, 4))
    assert r.token_N.numel() == 20 and r.stats["dropped_fraction"] == 0.0


def test_aux_free_bias_balances_a_skewed_router():
    cfg = MoEConfig(num_experts=4, top_k=1, router="aux_free", score_func="sigmoid")
    router = AuxFreeRouter(cfg.model_copy(update={"bias_update_rate": 0.02}))
    gen = torch.Generator().manual_seed(0)
    skew_E = torch.tensor([3.0, 0.0, 0.0, 0.0])  # expert 0 wins almost every token

    def step() -> float:
        r = router(torch.randn(4, 16, 4, generator=gen) + skew_E)
        router.update_bias()
        return r.stats["load_cv"]

    first = step()
    cvs = [step() for _ in range(200)]
    assert first > 1.0
    assert sum(cvs[-20:]) / 20 < 0.3 * first
    assert router.bias_E[0] < router.bias_E[1:].min()
    assert (router.load_E == 0).all()


def test_aux_free_eval_forward_does_not_count_load():
    router = AuxFreeRouter(MoEConfig(num_experts=4, top_k=2, router="aux_free")).eval()
    router(torch.randn(2, 3, 4))
    assert (router.load_E == 0).all()


def test_seq_aux_loss_is_per_sequence():
    cfg = MoEConfig(
        num_experts=4, top_k=2, score_func="sigmoid", seq_aux_loss_coef=0.1, z_loss_coef=0.0
    )
    torch.manual_seed(0)
    logits_BLE = torch.randn(3, 6, 4)
    got = AuxFreeRouter(cfg)(logits_BLE).aux_loss
    want = 0.0
    for logits_LE in logits_BLE:  # DeepSeek-V3 eqs. 17-20, one sequence at a time
        s_LE = logits_LE.sigmoid()
        chosen_LE = torch.zeros(6, 4).scatter_(1, s_LE.topk(2, -1).indices, 1.0)
        f_E = chosen_LE.sum(0) * 4 / (2 * 6)
        p_E = (s_LE / s_LE.sum(-1, keepdim=True)).mean(0)
        want += 0.1 * (f_E * p_E).sum().item() / 3
    assert math.isclose(got.item(), want, rel_tol=1e-5)


def _ec(causal: bool, **moe) -> MoE:
    layer = _moe(num_experts=4, top_k=1, router="expert_choice", score_func="sigmoid", **moe)
    layer.routing.causal = causal
    with torch.no_grad():
        layer.router.weight.copy_(torch.eye(4, 16))  # logit e = feature e
    return layer


def _pairs(moe: MoE, x_BLD: torch.Tensor, before: int) -> list[tuple[int, int, float]]:
    """(token, slot, weight) of every slot of a token before position ``before`` (B=1)."""
    r = copy.deepcopy(moe.routing)(moe.router(x_BLD).float())
    rows = zip(r.token_N.tolist(), r.slot_N.tolist(), r.weight_N.tolist(), strict=True)
    return sorted(row for row in rows if row[0] < before)


def test_expert_choice_each_expert_takes_exactly_c_tokens():
    moe = _moe(num_experts=4, top_k=2, router="expert_choice", capacity_factor=1.0)
    moe.routing.causal = False
    moe(torch.randn(2, 6, 16))
    assert moe.stats["tokens_per_expert"] == [6, 6, 6, 6]  # C = ceil(12 * 2 / 4)


@torch.no_grad()  # the modules are deep-copied: no autograd graph in their aux_loss
def test_expert_choice_batch_mode_leaks_the_future():
    torch.manual_seed(0)
    x_1LD = torch.randn(1, 8, 16)
    future_1LD = x_1LD.clone()
    future_1LD[0, 6:, :4] = 20.0  # later tokens now top every expert (C = 2)
    batch = _ec(causal=False)
    assert not torch.equal(batch(x_1LD)[:, :6], batch(future_1LD)[:, :6])
    assert batch(future_1LD)[:, :6].abs().max() == 0  # the future took every place
    causal = _ec(causal=True)
    for _ in range(2):  # the bootstrap rule, then a threshold learned from a past batch
        a, b = copy.deepcopy(causal), copy.deepcopy(causal)  # the same past for both
        assert _pairs(a, x_1LD, before=6) == _pairs(b, future_1LD, before=6)
        # Equal up to GEMM rounding: the experts' batches grew by the future tokens.
        torch.testing.assert_close(a(x_1LD)[:, :6], b(future_1LD)[:, :6], rtol=0, atol=1e-6)
        causal(torch.randn(2, 8, 16))
    assert causal.routing.threshold_updates.item() == 2


def test_expert_choice_causal_has_no_gradient_from_the_future():
    moe = _ec(causal=True)
    torch.manual_seed(0)
    moe(torch.randn(2, 8, 16))  # learn a threshold
    x_BLD = torch.randn(2, 8, 16, requires_grad=True)
    y_BLD = moe(x_BLD)
    for t in range(8):
        (g_BLD,) = torch.autograd.grad(y_BLD[:, t].sum(), x_BLD, retain_graph=True)
        assert (g_BLD[:, t + 1 :] == 0).all()
        assert g_BLD[:, t].abs().max() > 0
    # Trainable: the router gets a gradient through the gating weights.
    (y_BLD.pow(2).sum() + moe.aux_loss).backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_expert_choice_causal_decodes_token_by_token():
    moe = _ec(causal=True)
    moe(torch.randn(4, 8, 16))  # training forward: the threshold
    moe.eval()
    x_1LD = torch.randn(1, 8, 16)
    full_1LD = moe(x_1LD)
    steps_1LD = torch.cat([moe(x_1LD[:, t : t + 1]) for t in range(8)], dim=1)
    torch.testing.assert_close(full_1LD, steps_1LD, rtol=0, atol=1e-6)
    assert moe.routing.threshold_updates.item() == 1  # eval leaves it alone


def test_routers_are_deterministic_and_router_state_survives_state_dict():
    for router in ("token_choice", "aux_free", "expert_choice"):
        a = _moe(num_experts=4, top_k=2, router=router, capacity_factor=1.0)
        x_BLD = torch.randn(2, 5, 16)
        a(x_BLD)  # training forward: loads, threshold
        a.update_bias()
        a.eval()
        torch.testing.assert_close(a(x_BLD), a(x_BLD), rtol=0, atol=0)
        b = _moe(num_experts=4, top_k=2, router=router, capacity_factor=1.0).eval()
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(b(x_BLD), a(x_BLD), rtol=0, atol=0)
    assert a.routing.threshold_updates.item() == 1 and "routing.threshold_E" in a.state_dict()


def test_token_choice_capacity_is_training_only():
    # The setting of test_capacity_drops_exactly_what_it_allows: five tokens want expert 0.
    moe = _moe(d_model=8, num_experts=2, top_k=1, capacity_factor=1.0)
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(2, 8))
    x_BLD = torch.zeros(2, 3, 8)
    x_BLD[..., 0] = 1.0
    x_BLD[1, 2, :2] = torch.tensor([0.0, 1.0])
    x_BLD[..., 2] = torch.arange(1, 7.0).view(2, 3)
    assert (moe(x_BLD) == 0).all(-1).sum() == 2  # training: two slots dropped
    moe.eval()
    y_BLD = moe(x_BLD)
    assert moe.stats["dropped_fraction"] == 0.0 and not (y_BLD == 0).all(-1).any()
    # Each token as it would be decoded alone: the same output.
    alone = [moe(x_BLD[b : b + 1, t : t + 1]) for b in range(2) for t in range(3)]
    torch.testing.assert_close(torch.cat(alone).view(2, 3, 8), y_BLD, rtol=0, atol=1e-6)


def test_expert_choice_batch_mode_routes_per_token_at_inference():
    batch, causal = _ec(causal=False), _ec(causal=True)
    torch.manual_seed(0)
    warm_BLD = torch.randn(2, 8, 16)
    batch.eval(), causal.eval()
    x_1LD = torch.randn(1, 8, 16)
    # No threshold yet: each token's own top-K, as causal mode before any batch.
    torch.testing.assert_close(batch(x_1LD), causal(x_1LD), rtol=0, atol=0)
    batch.train(), causal.train()
    batch(warm_BLD)  # both modes learn the same threshold in training
    causal(warm_BLD)
    torch.testing.assert_close(batch.routing.threshold_E, causal.routing.threshold_E)
    batch.eval(), causal.eval()
    future_1LD = x_1LD.clone()
    future_1LD[0, 6:, :4] = 20.0  # in training this future took every place
    torch.testing.assert_close(batch(x_1LD), causal(x_1LD), rtol=0, atol=0)
    torch.testing.assert_close(batch(future_1LD)[:, :6], batch(x_1LD)[:, :6], rtol=0, atol=1e-6)
