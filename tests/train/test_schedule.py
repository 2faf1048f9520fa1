import math

import pytest

from superlab.config.recipe import TrainConfig
from superlab.train.schedule import lr_at, lr_for

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


WSD = dict(KW, schedule="wsd", decay_fraction=0.3)


def test_wsd_holds_the_peak_then_decays_by_one_minus_sqrt():
    # 14 steps, decay over round(0.3 * 14) = 4 steps: 9 is the last at the peak, 13 at min.
    assert [lr_at(s, **WSD) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert [lr_at(s, **WSD) for s in range(4, 10)] == [1.0] * 6
    assert lr_at(10, **WSD) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.25)))  # 0.55
    assert lr_at(11, **WSD) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.5)))
    assert lr_at(13, **WSD) == pytest.approx(0.1)
    assert lr_at(50, **WSD) == pytest.approx(0.1)


def test_wsd_decay_never_eats_the_warmup():
    # decay_fraction 1: the decay starts right after warmup, from the peak.
    kw = dict(WSD, decay_fraction=1.0)
    assert lr_at(3, **kw) == 1.0 and lr_at(4, **kw) == 1.0
    assert lr_at(13, **kw) == pytest.approx(0.1)
    assert all(lr_at(s, **kw) > lr_at(s + 1, **kw) for s in range(4, 13))


def test_lr_for_reads_the_recipe():
    tc = TrainConfig(steps=14, lr=1.0, warmup_steps=4, min_lr_ratio=0.1, schedule="wsd")
    assert [lr_for(tc, s) for s in range(14)] == [
        lr_at(s, **dict(WSD, decay_fraction=0.2)) for s in range(14)
    ]
    with pytest.raises(ValueError, match="schedule"):
        lr_at(5, **dict(KW, schedule="linear"))
