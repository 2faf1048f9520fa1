"""Continuous batching: batched requests equal each one decoded alone, greedy equals argmax."""

import pytest
import torch

from superlab.serve.engine import Engine, GenRequest
from superlab.serve.generate import Generator
from superlab.serve.sampling import SamplingParams
from superlab.serve.text import TextStream

from .conftest import tiny_model

PROMPTS = ["The history of", "A", "Numbers like 1, 2, 3 and 42 appear in", "quick brown"]


def argmax_path(model, ids: list[int], n: int, eos: int) -> list[int]:
    """Greedy continuation by re-running the whole context each step (no cache, no engine)."""
    out: list[int] = []
    for _ in range(n):
        with torch.no_grad():
            token = int(model(torch.tensor([ids + out])).logits_BTV[0, -1].argmax())
        if token == eos:
            break
        out.append(token)
    return out


def run(engine: Engine, reqs: list[GenRequest], join_every: int = 0) -> dict[str, list[int]]:
    """Step until idle; with ``join_every`` > 0 submit one request every that many steps."""
    tokens: dict[str, list[int]] = {r.id: [] for r in reqs}
    waiting = list(reqs)
    steps = 0
    while waiting or not engine.idle:
        if waiting and (join_every == 0 or steps % join_every == 0):
            for r in waiting if join_every == 0 else waiting[:1]:
                engine.submit(r)
            waiting = [] if join_every == 0 else waiting[1:]
        for d in engine.step():
            tokens[d.request_id] += d.token_ids
        steps += 1
    return tokens


@pytest.mark.parametrize("kind", ["full", "sliding", "chunked"])
def test_batched_greedy_equals_the_argmax_path(tokenizer, kind):
    model = tiny_model(tokenizer.get_vocab_size(), kind)
    gen = Generator(model, tokenizer, max_seq_len=64)
    outs = gen.generate_many(PROMPTS, SamplingParams(max_tokens=12))
    for prompt, out in zip(PROMPTS, outs, strict=True):
        ids = tokenizer.encode(prompt).ids
        assert out.token_ids == argmax_path(model, ids, 12, gen.eos_id)
        assert out.text == tokenizer.decode(out.token_ids)


def test_requests_joining_and_leaving_equal_each_alone(tokenizer):
    """Five seeded sampling requests, max 2 running, joining every 3 steps: same as alone."""
    model = tiny_model(tokenizer.get_vocab_size())
    reqs = [
        GenRequest(
            str(i),
            tokenizer.encode(p).ids,
            SamplingParams(max_tokens=6 + 3 * i, temperature=0.9, top_k=50, seed=i),
        )
        for i, p in enumerate([*PROMPTS, "The lazy dog"])
    ]
    together = run(Engine(model, tokenizer, 64, max_batch=2), reqs, join_every=3)
    for r in reqs:
        alone = run(Engine(model, tokenizer, 64), [r])
        assert together[r.id] == alone[r.id]
        assert len(alone[r.id]) == r.params.max_tokens  # no EOS in this vocabulary's path


def test_fixed_seed_is_reproducible_and_seeds_differ(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size())
    gen = Generator(model, tokenizer, max_seq_len=64)

    def sample(seed: int) -> list[int]:
        p = SamplingParams(max_tokens=20, temperature=1.0, top_p=0.95, seed=seed)
        return gen.generate_many(["The history of"], p)[0].token_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_stop_strings_max_tokens_and_repetition_penalty(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size())
    gen = Generator(model, tokenizer, max_seq_len=64)
    full = gen.generate_many(["The history of"], SamplingParams(max_tokens=16))[0]
    assert full.finish_reason == "length" and len(full.token_ids) == 16
    stop = full.text[5:8]
    cut = gen.generate_many(["The history of"], SamplingParams(max_tokens=16, stop=(stop,)))[0]
    assert cut.finish_reason == "stop" and cut.text == full.text[: full.text.find(stop)]
    # A strong repetition penalty never picks a token already in the context when greedy.
    ids = tokenizer.encode("The history of").ids
    p = SamplingParams(max_tokens=10, repetition_penalty=1e6)
    pen = gen.generate_many(["The history of"], p)[0].token_ids
    assert len(set(pen)) == len(pen) and not set(pen) & set(ids)


def test_logprobs_and_prompt_scores_equal_the_full_forward(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size())
    engine = Engine(model, tokenizer, 64, prefill_tokens=5)  # the score runs in 5-token chunks
    ids = tokenizer.encode("Numbers like 1, 2, 3 and 42 appear in many").ids
    with torch.no_grad():
        lp_TV = torch.log_softmax(model(torch.tensor([ids])).logits_BTV[0].float(), -1)
    scores = engine.score(ids, top_n=2)
    assert scores[0] is None and len(scores) == len(ids)
    for t in range(1, len(ids)):
        s = scores[t]
        assert s is not None and s.token_id == ids[t]
        assert s.logprob == pytest.approx(float(lp_TV[t - 1, ids[t]]), abs=1e-5)
        assert s.top[0][0] == int(lp_TV[t - 1].argmax())
    ids = tokenizer.encode("The history of").ids
    engine.submit(GenRequest("a", ids, SamplingParams(max_tokens=3, logprobs=1)))
    deltas: list = []
    while not deltas:  # the prompt is prefilled in 5-token chunks, one per step
        deltas = engine.step()
    first = deltas[0].logprobs[0]
    with torch.no_grad():
        lp_V = torch.log_softmax(model(torch.tensor([ids])).logits_BTV[0, -1].float(), -1)
    assert first.logprob == pytest.approx(float(lp_V.max()), abs=1e-5)
    assert first.top == [(first.token_id, first.logprob)]


def test_context_limit_under_full_attention(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size(), max_seq_len=16)
    engine = Engine(model, tokenizer, 16)
    with pytest.raises(ValueError, match="prompt: 16 tokens"):
        engine.check_prompt(list(range(2, 18)))
    bounded = Engine(tiny_model(tokenizer.get_vocab_size(), "sliding", 16), tokenizer, 16)
    out = run(bounded, [GenRequest("b", [5] * 30, SamplingParams(max_tokens=40))])["b"]
    assert len(out) == 40  # sliding attention: a bounded cache, no context limit


def test_full_attention_stops_at_the_context(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size(), max_seq_len=16)
    gen = Generator(model, tokenizer, max_seq_len=16)
    ids = tokenizer.encode("The history of mathematics").ids
    out = gen.generate_many(["The history of mathematics"], SamplingParams(max_tokens=50))[0]
    assert out.finish_reason == "length" and len(ids) + len(out.token_ids) == 17


def test_abort_ends_a_request(tokenizer):
    engine = Engine(tiny_model(tokenizer.get_vocab_size()), tokenizer, 64)
    engine.submit(GenRequest("a", [5, 6], SamplingParams(max_tokens=50)))
    engine.submit(GenRequest("b", [5, 6], SamplingParams(max_tokens=50)))
    engine.step()
    engine.abort("a")
    reasons = {d.request_id: d.finish_reason for d in engine.step()}
    assert reasons["a"] == "abort" and reasons["b"] is None and len(engine.running) == 1


def test_text_stream_holds_back_split_characters_and_stop_prefixes(tokenizer):
    ids = tokenizer.encode("Caf\u00e9 END here").ids
    stream = TextStream(tokenizer, stop=("END",))
    pieces = [stream.push(i) for i in ids]
    assert "".join(pieces) == "Caf\u00e9 " and stream.stopped
    assert all("\ufffd" not in p for p in pieces)
    nostop = TextStream(tokenizer, stop=("ENDX",))
    text = "".join(nostop.push(i) for i in ids)
    assert text + nostop.finish() == "Caf\u00e9 END here"


def test_a_failing_row_fails_its_request_and_the_others_go_on(tokenizer, monkeypatch):
    """An exception while sampling one row ends that request with ``error``, nothing else."""
    model = tiny_model(tokenizer.get_vocab_size())
    engine = Engine(model, tokenizer, 64)
    real = Engine._next_token

    def flaky(self, seq, logits_V, greedy):
        if seq.req.id == "bad" and len(seq.generated) == 2:
            raise RuntimeError("injected")
        return real(self, seq, logits_V, greedy)

    monkeypatch.setattr(Engine, "_next_token", flaky)
    ids = tokenizer.encode("The history of").ids
    reqs = [GenRequest(i, ids, SamplingParams(max_tokens=8)) for i in ("ok1", "bad", "ok2")]
    finals = {}
    tokens: dict[str, list[int]] = {r.id: [] for r in reqs}
    for r in reqs:
        engine.submit(r)
    while not engine.idle:
        for d in engine.step():
            tokens[d.request_id] += d.token_ids
            if d.finish_reason is not None:
                finals[d.request_id] = d
    assert finals["bad"].finish_reason == "error" and "injected" in finals["bad"].error
    assert len(tokens["bad"]) == 2
    want = argmax_path(model, ids, 8, engine.eos_id)
    assert tokens["ok1"] == tokens["ok2"] == want  # the batch went on, undisturbed


def test_a_failing_prefill_fails_only_the_requests_it_admitted(tokenizer, monkeypatch):
    engine = Engine(tiny_model(tokenizer.get_vocab_size()), tokenizer, 64)
    engine.submit(GenRequest("a", [5, 6], SamplingParams(max_tokens=4)))
    engine.step()
    monkeypatch.setattr(engine, "_prefill", lambda chunks: (_ for _ in ()).throw(MemoryError))
    engine.submit(GenRequest("b", [5, 6], SamplingParams(max_tokens=4)))
    out = {d.request_id: d for d in engine.step()}
    assert out["b"].finish_reason == "error" and "MemoryError" in out["b"].error
    assert out["a"].finish_reason is None and len(engine.running) == 1


@pytest.mark.parametrize("seed", [-(2**63), -1, 2**63 - 1])
def test_any_signed_64_bit_seed_is_usable(tokenizer, seed):
    engine = Engine(tiny_model(tokenizer.get_vocab_size()), tokenizer, 64)
    p = SamplingParams(max_tokens=3, temperature=1.0, seed=seed)
    assert len(run(engine, [GenRequest("s", [5, 6], p)])["s"]) == 3


class _CountingTokenizer:
    """Counts the token ids each decode call reads."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.decoded = tokenizer, 0

    def decode(self, ids, **kwargs) -> str:
        self.decoded += len(ids)
        return self.tokenizer.decode(ids, **kwargs)


def test_text_stream_decodes_each_token_a_bounded_number_of_times(tokenizer):
    """Incremental detokenization: the same text as decoding everything, in linear work
    (re-decoding the whole text at every token was quadratic in its length)."""
    text = "Caf\u00e9 na\u00efve \u00fcber \u65e5\u672c, the quick brown fox. " * 40
    ids = tokenizer.encode(text).ids
    counting = _CountingTokenizer(tokenizer)
    stream = TextStream(counting, stop=("STOP",))
    out = "".join(stream.push(i) for i in ids) + stream.finish()
    assert out == tokenizer.decode(ids) and "\ufffd" not in out
    assert counting.decoded <= 4 * len(ids) + len(ids)  # pushes, then one decode at finish
    stop_at = TextStream(tokenizer, stop=("brown fox. Caf",))
    pieces = []
    for i in ids:
        pieces.append(stop_at.push(i))
        if stop_at.stopped:
            break
    assert "".join(pieces) == text[: text.find("brown fox. Caf")]
