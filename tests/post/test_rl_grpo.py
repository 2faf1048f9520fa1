"""GRPO's math against hand-computed values and the formulas written out."""

from __future__ import annotations

import math

import pytest
import torch

from superlab.post.grpo import (
    clipped_token_loss,
    group_advantages,
    k3_kl,
    reduce_loss,
)
from superlab.post.rollout import sample_seed, sequences


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    # group 1: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735; group 2: no variance
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)
    expected = [a, -a, -a, a, 0.0, 0.0, 0.0, 0.0]
    assert group_advantages(rewards, 4, scale=True).tolist() == pytest.approx(expected, rel=1e-6)
    # Dr. GRPO: centred only
    dr = [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    assert group_advantages(rewards, 4, scale=False).tolist() == pytest.approx(dr)


def test_clipped_loss_and_k3_against_the_formulas():
    logp = torch.tensor([[-1.0, -0.5, -2.0], [-0.2, -3.0, -1.0]])
    old = torch.tensor([[-1.5, -0.5, -1.0], [-0.2, -2.0, -1.3]])
    adv = torch.tensor([1.0, -2.0])
    loss, active = clipped_token_loss(logp, old, adv, 0.2, 0.28)
    for b in range(2):
        for t in range(3):
            r = math.exp(logp[b, t] - old[b, t])
            a = float(adv[b])
            want = -min(r * a, min(max(r, 0.8), 1.28) * a)
            assert float(loss[b, t]) == pytest.approx(want, rel=1e-6)
            assert bool(active[b, t]) == ((r < 0.8 and a < 0) or (r > 1.28 and a > 0))
    assert active.tolist() == [[True, False, False], [False, True, False]]
    ref = torch.tensor([[-1.2, -0.1, -2.0], [0.0, -1.0, -1.5]])
    kl = k3_kl(logp, ref)
    for b in range(2):
        for t in range(3):
            d = float(ref[b, t] - logp[b, t])
            assert float(kl[b, t]) == pytest.approx(math.exp(d) - d - 1, rel=1e-5, abs=1e-7)
    assert (kl >= 0).all() and kl[0, 2] == 0  # zero where policy = reference


def test_seq_mean_and_token_mean():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    assert float(reduce_loss(loss, mask, "seq_mean")) == pytest.approx((2.0 + 4.0) / 2)
    assert float(reduce_loss(loss, mask, "token_mean")) == pytest.approx(10.0 / 4)


def test_sequences_target_only_completion_tokens():
    x, y = sequences([[5, 6, 7], [5, 6]], [[8, 9], [3]], pad=1)
    assert x.tolist() == [[5, 6, 7, 8], [5, 6, 1, 1]]
    assert y.tolist() == [[-100, -100, 8, 9], [-100, 3, -100, -100]]


def test_sample_seeds_are_fixed_and_distinct():
    seeds = {sample_seed(1, r, p, s) for r in range(3) for p in range(3) for s in range(3)}
    assert len(seeds) == 27 and sample_seed(1, 2, 2, 2) == sample_seed(1, 2, 2, 2)
