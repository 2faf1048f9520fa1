import torch

from superlab.serve.sampling import apply_openai_penalties, filter_logits, sample_next


def test_greedy_is_argmax():
    logits = torch.tensor([0.1, 2.0, -1.0, 1.9])
    assert sample_next(logits, 0.0, None, None, None) == 1


def test_top_k_keeps_k_largest():
    out = filter_logits(torch.tensor([1.0, 4.0, 3.0, 2.0]), top_k=2)
    assert torch.isinf(out).tolist() == [True, False, False, True]


def test_top_p_keeps_smallest_nucleus():
    # probs 0.5, 0.3, 0.15, 0.05: top_p=0.8 keeps the first two (0.5 + 0.3 reaches 0.8).
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isfinite(filter_logits(logits, top_p=0.8)).tolist() == [True, True, False, False]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).tolist() == [True, True, True, False]
    # The most likely token always survives, however small top_p is.
    assert torch.isfinite(filter_logits(logits, top_p=0.01)).tolist() == [True, False, False, False]


def test_seeded_sampling_is_reproducible_and_follows_probabilities():
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1]))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = [sample_next(logits, 1.0, None, None, g1) for _ in range(2000)]
    b = [sample_next(logits, 1.0, None, None, g2) for _ in range(2000)]
    assert a == b
    share = a.count(0) / len(a)
    assert 0.66 < share < 0.74


def test_top_k_one_equals_greedy_at_any_temperature():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    picks = {sample_next(logits, 5.0, 1, None, g) for _ in range(20)}
    assert picks == {int(torch.argmax(logits))}


def test_a_tiny_temperature_is_greedy_not_nan():
    """1e-300 is inside OpenAI's 0..2; dividing raw logits by it overflowed to nan."""
    logits = torch.tensor([0.1, 2.0, -1.0, 1.9])
    g = torch.Generator().manual_seed(0)
    assert {sample_next(logits, 1e-300, None, 0.9, g) for _ in range(5)} == {1}


def test_presence_frequency_penalties_and_logit_bias_follow_openai():
    logits = torch.zeros(4)
    out = apply_openai_penalties(
        logits, [1, 1, 2], presence=0.5, frequency=0.25, bias=((3, -100.0),)
    )
    # count 2 -> 2 * 0.25 + 0.5; count 1 -> 0.25 + 0.5; unseen 0; bias -100 on token 3.
    assert out.tolist() == [0.0, -1.0, -0.75, -100.0]
    assert apply_openai_penalties(logits, [], 0.5, 0.5, ()) is logits
