import math

import pytest

from superlab.train.schedule import lr_at

KW = dict(lr=1.0, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)


def test_warmup_then_cosine_to_min():
    assert [lr_at(s, **KW) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, **KW) == 1.0
    # Halfway through the decay (steps 4..13): 0.1 + 0.9 * 0.5 = 0.55.
    assert lr_at(4 + 4.5, **KW) == pytest.approx(0.55)
    assert lr_at(13, **KW) == pytest.approx(0.1)
    assert lr_at(100, **KW) == pytest.approx(0.1)
    assert lr_at(6, **KW) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 2 / 9)))


def test_no_warmup_and_single_step():
    assert lr_at(0, lr=2.0, warmup_steps=0, total_steps=10, min_lr_ratio=0.0) == 2.0
    assert lr_at(0, lr=2.0, warmup_steps=0, total_steps=1, min_lr_ratio=0.0) == 2.0
