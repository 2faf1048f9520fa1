"""DPO, IPO and SimPO against the formulas written out by hand for one pair."""

from __future__ import annotations

import math

import pytest
import torch

from superlab.post.losses import preference_loss

PC, PR, RC, RR = -3.0, -5.0, -4.0, -4.5  # policy / reference, chosen / rejected
BETA, EPS, GAMMA = 0.5, 0.1, 0.3


def _t(v: float) -> torch.Tensor:
    return torch.tensor([v], dtype=torch.float64)


def _log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z))


def _loss(kind: str, **kw) -> tuple[float, float, float]:
    losses, c, r = preference_loss(kind, _t(PC), _t(PR), _t(RC), _t(RR), BETA, **kw)
    return losses.item(), c.item(), r.item()


def test_dpo_sigmoid_with_label_smoothing():
    h = (PC - PR) - (RC - RR)  # 1.5
    want = -(1 - EPS) * _log_sigmoid(BETA * h) - EPS * _log_sigmoid(-BETA * h)
    loss, chosen, rejected = _loss("dpo", label_smoothing=EPS)
    assert loss == pytest.approx(want, abs=1e-12)
    assert (chosen, rejected) == pytest.approx((BETA * (PC - RC), BETA * (PR - RR)))


def test_ipo():
    h = (PC - PR) - (RC - RR)
    assert _loss("ipo")[0] == pytest.approx((h - 1 / (2 * BETA)) ** 2, abs=1e-12)


def test_simpo_is_reference_free():
    h = (PC - PR) - GAMMA / BETA
    loss, chosen, rejected = _loss("simpo", gamma=GAMMA)
    assert loss == pytest.approx(-_log_sigmoid(BETA * h), abs=1e-12)
    assert (chosen, rejected) == pytest.approx((BETA * PC, BETA * PR))
    moved = preference_loss("simpo", _t(PC), _t(PR), _t(0.0), _t(-9.0), BETA, gamma=GAMMA)
    assert moved[0].item() == loss


def test_policy_equal_to_reference_gives_log_2():
    assert preference_loss("dpo", _t(PC), _t(PR), _t(PC), _t(PR), BETA)[0].item() == (
        pytest.approx(math.log(2))
    )
