"""One decode loop: ``Generator.generate`` is a batch of one through the ``Engine``, and
gives the tokens of the plain definition (re-run the context cropped to ``max_seq_len``,
no cache, one seeded CPU generator per request)."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer

from superlab.serve.engine import Engine, GenRequest
from superlab.serve.generate import Completion, Generator
from superlab.serve.sampling import SamplingParams, apply_repetition_penalty, sample_next

from .conftest import tiny_model

MAX_SEQ_LEN = 16  # sliding window 6, 2 layers: a receptive field of 10, so cropping loses nothing


def reference(
    model: torch.nn.Module, tokenizer: Tokenizer, prompt: str, p: SamplingParams
) -> Completion:
    """Decode ``prompt`` the slow, obvious way: no cache, the last MAX_SEQ_LEN tokens."""
    eos = tokenizer.token_to_id("<|endoftext|>")
    ids = tokenizer.encode(prompt).ids
    rng = torch.Generator().manual_seed(p.seed or 0)
    new: list[int] = []
    for _ in range(p.max_tokens):
        with torch.no_grad():
            ctx = torch.tensor([(ids + new)[-MAX_SEQ_LEN:]])
            logits_V = model(ctx).logits_BTV[0, -1].float()
        logits_V = apply_repetition_penalty(logits_V, ids + new, p.repetition_penalty)
        token = sample_next(logits_V, p.temperature, p.top_k, p.top_p, rng)
        if token == eos:
            return Completion(tokenizer.decode(new), new, "eos")
        new.append(token)
        text = tokenizer.decode(new)
        cuts = [i for i in (text.find(s) for s in p.stop) if i >= 0]
        if cuts:
            return Completion(text[: min(cuts)], new, "stop")
    return Completion(tokenizer.decode(new), new, "length")


SETTINGS = {
    "greedy": SamplingParams(max_tokens=12),
    "sampled": SamplingParams(max_tokens=12, temperature=0.9, top_k=40, top_p=0.95, seed=3),
    "repetition": SamplingParams(max_tokens=12, temperature=0.7, repetition_penalty=1.5, seed=4),
    "greedy_repetition": SamplingParams(max_tokens=12, repetition_penalty=3.0),
    # past max_seq_len from a short prompt: the cache first, then re-running the window
    "past_context": SamplingParams(max_tokens=30, temperature=0.8, seed=5),
}


@pytest.mark.parametrize("kind", ["full", "sliding"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_generate_equals_the_plain_definition(tokenizer, kind, name):
    model = tiny_model(tokenizer.get_vocab_size(), kind, MAX_SEQ_LEN)
    gen = Generator(model, tokenizer, MAX_SEQ_LEN)
    for prompt in ["The history of", "Numbers like 1, 2, 3 and 42 appear in many stories"]:
        want = reference(model, tokenizer, prompt, SETTINGS[name])
        assert gen.generate(prompt, SETTINGS[name]) == want
        if name == "past_context":
            assert want.finish_reason == "length" and len(want.token_ids) == 30


@pytest.mark.parametrize("kind", ["full", "sliding"])
def test_stop_strings_equal_the_plain_definition(tokenizer, kind):
    model = tiny_model(tokenizer.get_vocab_size(), kind, MAX_SEQ_LEN)
    gen = Generator(model, tokenizer, MAX_SEQ_LEN)
    full = reference(model, tokenizer, "The history of", SETTINGS["past_context"])
    stop = full.text[20:23]  # three characters late in the text: past max_seq_len
    p = SamplingParams(max_tokens=30, temperature=0.8, seed=5, stop=("zzz", stop))
    want = reference(model, tokenizer, "The history of", p)
    assert want.finish_reason == "stop" and want.text == full.text[: full.text.find(stop)]
    assert gen.generate("The history of", p) == want


def test_a_prompt_longer_than_the_context_is_cropped(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size(), "full", MAX_SEQ_LEN)
    prompt = "The quick brown fox jumps over the lazy dog. Numbers like 1, 2, 3 and 42"
    assert len(tokenizer.encode(prompt).ids) > MAX_SEQ_LEN
    p = SamplingParams(max_tokens=10, temperature=0.9, seed=1)
    want = reference(model, tokenizer, prompt, p)
    assert Generator(model, tokenizer, MAX_SEQ_LEN).generate(prompt, p) == want
    with pytest.raises(ValueError, match=r"prompt: 20 tokens; the model's context is 16"):
        Engine(model, tokenizer, MAX_SEQ_LEN).submit(GenRequest("x", [5] * 20, p))


def test_generate_runs_the_engine_and_nothing_else(tokenizer, monkeypatch):
    """There is no second loop: every token of ``generate`` comes out of ``Engine.step``."""
    model = tiny_model(tokenizer.get_vocab_size(), "full", MAX_SEQ_LEN)
    from_steps: list[int] = []
    real = Engine.step

    def step(self: Engine):
        out = real(self)
        from_steps.extend(t for d in out for t in d.token_ids)
        return out

    monkeypatch.setattr(Engine, "step", step)
    c = Generator(model, tokenizer, MAX_SEQ_LEN).generate(
        "The history of", SamplingParams(max_tokens=25, temperature=0.8, seed=2)
    )
    assert c.token_ids == from_steps and len(c.token_ids) == 25


def test_re_run_rows_batch_with_cached_rows(tokenizer):
    """With ``crop_context`` rows that passed the context (re-run) and rows still in the
    cache decode in the same steps, each as it would alone through ``generate``."""
    model = tiny_model(tokenizer.get_vocab_size(), "full", MAX_SEQ_LEN)
    gen = Generator(model, tokenizer, MAX_SEQ_LEN)
    prompts = ["The history of", "A", "Numbers like 1, 2, 3 and 42 appear in many stories"]
    params = [SamplingParams(max_tokens=8 + 8 * i, temperature=0.9, seed=i) for i in range(3)]
    engine = Engine(model, tokenizer, MAX_SEQ_LEN, max_batch=2, crop_context=True)
    for i, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
        engine.submit(GenRequest(str(i), tokenizer.encode(prompt).ids, p))
    tokens: dict[str, list[int]] = {str(i): [] for i in range(3)}
    both = False
    while not engine.idle:
        for d in engine.step():
            tokens[d.request_id] += d.token_ids
        both = both or bool(engine.running and engine.rerun)
    assert both  # a step had a cached row and a re-run row
    for i, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
        assert tokens[str(i)] == gen.generate(prompt, p).token_ids


class Uncached(torch.nn.Module):
    """A model whose ``forward`` takes no cache."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, idx_BT: torch.Tensor):
        return self.inner(idx_BT)


def test_a_model_without_a_cache_is_decoded_and_scored_by_re_running(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size(), "full", MAX_SEQ_LEN)
    plain = Engine(Uncached(model), tokenizer, MAX_SEQ_LEN)
    cached = Engine(model, tokenizer, MAX_SEQ_LEN)
    assert not plain.cached and cached.cached
    ids = tokenizer.encode("Numbers like 1, 2, 3 and 42 appear").ids[:MAX_SEQ_LEN]
    a, b = plain.score(ids, top_n=2), cached.score(ids, top_n=2)
    assert [s.token_id for s in a[1:]] == [s.token_id for s in b[1:]]  # type: ignore[union-attr]
    for x, y in zip(a[1:], b[1:], strict=True):
        assert x is not None and y is not None
        assert x.logprob == pytest.approx(y.logprob, abs=1e-4)
    p = SamplingParams(max_tokens=20, temperature=0.9, seed=7)
    outs = {}
    for name, engine in (("plain", plain), ("cached", cached)):
        engine.submit(GenRequest(name, ids[:5], p))
        out = []
        while not engine.idle:
            for d in engine.step():
                out += d.token_ids
                last = d.finish_reason
        outs[name] = out
        # without crop_context both stop when the context passes max_seq_len
        assert last == "length" and len(out) == MAX_SEQ_LEN - 5 + 1
    assert outs["plain"] == outs["cached"]
