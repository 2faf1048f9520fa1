"""At inference an MoE model routes each token alone, whatever the router (docs/moe.md).

For every router setting, in eval mode: (a) a row gives the same logits decoded alone or
in a batch of four (one forward, and a ragged cached batch as continuous batching runs
it); (b) cached incremental decoding equals the full forward; (c) with document masking,
document 1's logits do not move when document 0's tokens change. Capacity (token choice)
and top-C over the batch (expert choice, batch mode) couple tokens, so they are training
only: in eval mode nothing is dropped for capacity and expert choice uses its per-token
rule.
"""

import pytest
import torch

from superlab.config.recipe import ModelConfig, MoEConfig
from superlab.model.moe import MoE
from superlab.model.transformer import Transformer

# name: (MoEConfig fields, a training forward first: the aux-free bias, the expert-choice
# threshold; without it expert choice uses its bootstrap rule, each token's own top-K).
ROUTERS: dict[str, tuple[dict, bool]] = {
    "token_choice-softmax-capacity": (dict(capacity_factor=1.0), False),
    "token_choice-sigmoid-capacity": (dict(score_func="sigmoid", capacity_factor=1.0), False),
    "token_choice-softmax-top1-capacity": (dict(top_k=1, capacity_factor=1.0), False),
    "token_choice-no-capacity": ({}, False),
    "aux_free-capacity": (
        dict(router="aux_free", score_func="sigmoid", capacity_factor=1.0),
        True,
    ),
    "expert_choice-causal-bootstrap": (dict(router="expert_choice"), False),
    "expert_choice-causal-threshold": (dict(router="expert_choice"), True),
    "expert_choice-batch-bootstrap": (
        dict(router="expert_choice", expert_choice_mode="batch"),
        False,
    ),
    "expert_choice-batch-threshold": (
        dict(router="expert_choice", expert_choice_mode="batch"),
        True,
    ),
}
V = 50


def _model(router: str, shared: int) -> Transformer:
    fields, warm = ROUTERS[router]
    fields = {"num_experts": 4, "top_k": 2, "every": 1, **fields}
    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=V,
        max_seq_len=64,
        moe=MoEConfig(num_shared_experts=shared, **fields),
    )
    torch.manual_seed(0)
    model = Transformer(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, MoE):  # decided, uneven routing: capacity overflows
                m.router.weight.normal_(std=0.5)
        if warm:  # one training forward: loads, thresholds
            model(torch.randint(0, V, (4, 16), generator=torch.Generator().manual_seed(7)))
            for m in model.modules():
                if isinstance(m, MoE):
                    m.update_bias()
                    if hasattr(m.routing, "bias_E"):  # a bias well away from zero
                        m.routing.bias_E.copy_(torch.linspace(-0.2, 0.2, 4))
    return model.eval()


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    # Equal up to GEMM rounding: an expert's slice of tokens differs in size.
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


CASES = pytest.mark.parametrize("router", ROUTERS)
SHARED = pytest.mark.parametrize("shared", [0, 1], ids=["routed", "shared"])


@CASES
@SHARED
@torch.no_grad()
def test_a_row_decoded_alone_equals_it_in_a_batch_of_four(router, shared):
    model = _model(router, shared)
    g = torch.Generator().manual_seed(1)
    idx_BT = torch.randint(0, V, (4, 24), generator=g)
    batch_BTV = model(idx_BT).logits_BTV
    alone = [model(idx_BT[b : b + 1]).logits_BTV[0] for b in range(4)]
    for b in range(4):
        _close(batch_BTV[b], alone[b])

    # The same four rows cut to different lengths, decoded together in one cache the way
    # the serve engine does: a right-padded prefill, then one token per step (a finished
    # row is padding), each row equal to that row's forward alone.
    lengths, prompts = [24, 13, 19, 7], [5, 9, 2, 7]
    cache = model.new_cache()
    got: list[list[torch.Tensor]] = [[] for _ in range(4)]
    fed = [0] * 4
    while any(f < n for f, n in zip(fed, lengths, strict=True)):
        take = [
            min(p, n) if f == 0 else int(f < n)
            for f, n, p in zip(fed, lengths, prompts, strict=True)
        ]
        T = max(take)
        step_BT = torch.zeros(4, T, dtype=torch.long)
        valid_BT = torch.zeros(4, T, dtype=torch.bool)
        for b in range(4):
            step_BT[b, : take[b]] = idx_BT[b, fed[b] : fed[b] + take[b]]
            valid_BT[b, : take[b]] = True
        out_BTV = model(step_BT, cache=cache, valid_BT=valid_BT).logits_BTV
        for b in range(4):
            got[b].append(out_BTV[b, valid_BT[b]])
            fed[b] += take[b]
    for b in range(4):
        _close(torch.cat(got[b]), alone[b][: lengths[b]])


@CASES
@SHARED
@torch.no_grad()
def test_cached_decoding_equals_the_full_forward(router, shared):
    model = _model(router, shared)
    idx_1T = torch.randint(0, V, (1, 24), generator=torch.Generator().manual_seed(2))
    full_TV = model(idx_1T).logits_BTV[0]
    cache = model.new_cache()
    steps = [model(idx_1T[:, :6], cache=cache).logits_BTV[0]]  # prefill
    steps += [model(idx_1T[:, t : t + 1], cache=cache).logits_BTV[0] for t in range(6, 24)]
    _close(torch.cat(steps), full_TV)


@CASES
@SHARED
@torch.no_grad()
def test_document_1_does_not_see_document_0(router, shared):
    model = _model(router, shared)
    g = torch.Generator().manual_seed(3)
    idx_1T = torch.randint(0, V, (1, 24), generator=g)
    doc_ids_1T = torch.tensor([[0] * 14 + [1] * 10])
    other_1T = idx_1T.clone()
    other_1T[0, :14] = torch.randint(0, V, (14,), generator=g)  # only document 0 changes
    a_TV = model(idx_1T, doc_ids_BT=doc_ids_1T).logits_BTV[0, 14:]
    b_TV = model(other_1T, doc_ids_BT=doc_ids_1T).logits_BTV[0, 14:]
    _close(a_TV, b_TV)


def test_training_forward_still_drops_for_capacity():
    """Capacity is a training-time limit, shared by the batch (docs/moe.md)."""
    model = _model("token_choice-softmax-capacity", 0).train()
    idx_BT = torch.randint(0, V, (4, 24), generator=torch.Generator().manual_seed(4))
    dropped = [s["dropped_fraction"] for s in model(idx_BT).moe_stats]
    assert max(dropped) > 0
    model.eval()
    assert [s["dropped_fraction"] for s in model(idx_BT).moe_stats] == [0.0, 0.0]


def test_a_kv_cache_needs_eval_mode():
    """Decoding is inference: in training mode capacity would couple the cache's rows."""
    model = _model("token_choice-softmax-capacity", 0).train()
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        model(torch.zeros(2, 3, dtype=torch.long), cache=model.new_cache())
