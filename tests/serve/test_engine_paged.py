"""The engine over the paged KV cache: every kind decodes as each request alone, preemption
recomputes without changing the output, prefix caching changes nothing but the work done,
chunked prefill interleaves with decoding, and a prompt with images equals the full forward."""

from __future__ import annotations

import pytest
import torch
from tests.model.vision.test_fusion import BOI, EOI, IMG, VISION

from superlab.model.transformer import Transformer
from superlab.serve.engine import Engine, GenRequest
from superlab.serve.sampling import SamplingParams

from .conftest import tiny_model
from .test_engine import run


class _Ids:
    """A tokenizer for id-only models: no EOS, ids decode to numbers."""

    def token_to_id(self, _: str) -> None:
        return None

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def _model(kind: str = "full", vocab: int = 96, max_seq_len: int = 64, **kw) -> Transformer:
    return tiny_model(vocab, kind, max_seq_len, **kw)


def _prompt(seed: int, n: int, vocab: int = 96) -> list[int]:
    return torch.randint(1, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def _sampled(i: int, max_tokens: int = 12, logprobs: int | None = None) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens, temperature=0.9, top_k=50, seed=i, logprobs=logprobs
    )


def _collect(engine: Engine, reqs: list[GenRequest], join_every: int = 0):
    """Tokens and chosen-token logprobs per request, stepping until idle."""
    tokens = {r.id: [] for r in reqs}
    lps = {r.id: [] for r in reqs}
    waiting, steps = list(reqs), 0
    while waiting or not engine.idle:
        if waiting and (join_every == 0 or steps % join_every == 0):
            batch = waiting if join_every == 0 else waiting[:1]
            for r in batch:
                engine.submit(r)
            waiting = waiting[len(batch) :]
        for d in engine.step():
            tokens[d.request_id] += d.token_ids
            lps[d.request_id] += [lp.logprob for lp in d.logprobs]
        steps += 1
    return tokens, lps


@pytest.mark.parametrize("kind", ["full", "sliding", "chunked", "sparse", "mixed"])
def test_every_kind_batched_equals_each_request_alone(kind):
    model = _model(kind)
    reqs = [GenRequest(str(i), _prompt(i, 5 + 4 * i), _sampled(i, 8 + 2 * i)) for i in range(5)]
    engine = Engine(model, _Ids(), 64, max_batch=3, kv_block_size=4)  # type: ignore[arg-type]
    together = run(engine, reqs, join_every=2)
    assert engine.stats()["kv_blocks_used"] == 0  # every finished sequence freed its blocks
    for r in reqs:
        alone = run(Engine(model, _Ids(), 64), [r])  # type: ignore[arg-type]
        assert together[r.id] == alone[r.id] and len(alone[r.id]) == r.params.max_tokens


@pytest.mark.parametrize(("kind", "blocks"), [("full", 14), ("sliding", 7)])
def test_preemption_recomputes_and_the_output_is_unchanged(kind, blocks):
    """A pool too small for every sequence at once: the newest is preempted, recomputed
    later (prompt + generated), and its sampled tokens are those of an unconstrained run."""
    model = _model(kind)
    reqs = [GenRequest(str(i), _prompt(10 + i, 6), _sampled(i, 20)) for i in range(4)]
    small = Engine(model, _Ids(), 64, max_batch=4, kv_block_size=4, kv_cache_blocks=blocks)  # type: ignore[arg-type]
    tight, _ = _collect(small, reqs)
    assert small.stats()["preemptions"] > 0
    free, _ = _collect(Engine(model, _Ids(), 64, max_batch=4, kv_block_size=4), reqs)  # type: ignore[arg-type]
    assert tight == free and all(len(t) == 20 for t in tight.values())


def test_a_sequence_alone_that_outgrows_the_pool_ends():
    model = _model("full")
    engine = Engine(model, _Ids(), 64, max_batch=1, kv_block_size=4, kv_cache_blocks=3)  # type: ignore[arg-type]
    req = GenRequest("a", _prompt(1, 6), SamplingParams(max_tokens=30))
    finals = [d for d in run_deltas(engine, [req]) if d.finish_reason is not None]
    # 12 positions fit: the 7th new token is sampled from the 12th position's logits.
    assert finals[0].finish_reason == "length" and finals[0].completion_tokens == 12 - 6 + 1
    with pytest.raises(ValueError, match="kv_cache_blocks"):
        engine.check_prompt(_prompt(2, 12))


def run_deltas(engine: Engine, reqs: list[GenRequest]) -> list:
    for r in reqs:
        engine.submit(r)
    out = []
    while not engine.idle:
        out += engine.step()
    return out


def test_prefix_cache_hits_give_identical_outputs_and_logprobs():
    model = _model("full")
    system = _prompt(99, 18)  # 4 full blocks of 4, shared by every request
    reqs = [
        GenRequest(str(i), system + _prompt(i, 3 + i), _sampled(i, 10, logprobs=0))
        for i in range(4)
    ]
    outs = {}
    for caching in (True, False):
        engine = Engine(model, _Ids(), 64, kv_block_size=4, prefix_caching=caching)  # type: ignore[arg-type]
        outs[caching] = _collect(engine, reqs[:1])  # the first one fills the cache
        more = _collect(engine, reqs[1:])
        for part in (0, 1):
            outs[caching][part].update(more[part])
        stats = engine.stats()
        if caching:
            # Each later request finds the system prompt's 4 blocks (16 tokens) cached.
            assert stats["prefix_cache_hits"] == 3 * 16
            assert stats["prefix_cache_queries"] == sum(len(r.prompt_ids) for r in reqs)
            assert 0 < stats["prefix_cache_hit_rate"] < 1
        else:
            assert stats["prefix_cache_hits"] == stats["prefix_cache_queries"] == 0
    assert outs[True][0] == outs[False][0]
    for rid, lps in outs[True][1].items():
        assert lps == pytest.approx(outs[False][1][rid], abs=1e-5)


def test_a_prompt_of_whole_cached_blocks_still_computes_its_last_token():
    model = _model("full")
    engine = Engine(model, _Ids(), 64, kv_block_size=4)  # type: ignore[arg-type]
    ids = _prompt(5, 8)  # exactly two blocks
    first = run(engine, [GenRequest("a", ids, SamplingParams(max_tokens=4))])["a"]
    again = run(engine, [GenRequest("b", ids, SamplingParams(max_tokens=4))])["b"]
    assert again == first and engine.stats()["prefix_cache_hits"] == 4  # one block, not two


def test_eviction_is_lru_and_never_takes_a_block_in_use():
    model = _model("full")
    engine = Engine(model, _Ids(), 64, max_batch=2, kv_block_size=4, kv_cache_blocks=8)  # type: ignore[arg-type]
    old, new = _prompt(1, 9), _prompt(2, 9)
    run(engine, [GenRequest("old", old, SamplingParams(max_tokens=1))])
    run(engine, [GenRequest("new", new, SamplingParams(max_tokens=1))])
    assert engine.kv is not None
    hashes = {}
    for name, ids in (("old", old), ("new", new)):
        probe = GenRequest(name, ids, SamplingParams())
        from superlab.serve.engine import _Seq

        seq = _Seq(probe, _Ids())  # type: ignore[arg-type]
        engine._extend_hashes(seq, len(ids))
        hashes[name] = seq.hashes
    assert engine.kv.lookup(hashes["old"]) == 2 and engine.kv.lookup(hashes["new"]) == 2
    # A running request holding "new"'s blocks, and one needing 6 fresh blocks: only the
    # least recently released cached blocks ("old") may be evicted.
    engine.submit(GenRequest("hold", [*new, 7], SamplingParams(max_tokens=10)))
    engine.step()
    engine.submit(GenRequest("fill", _prompt(3, 20), SamplingParams(max_tokens=1)))
    while not engine.idle:
        engine.step()
    assert engine.kv.lookup(hashes["old"]) == 0
    assert engine.kv.lookup(hashes["new"]) == 2


def test_namespaces_never_share_blocks():
    model = _model("full")
    ids = _prompt(4, 12)
    a = Engine(model, _Ids(), 64, kv_block_size=4, cache_namespace="ckpt-a:1")  # type: ignore[arg-type]
    b = Engine(model, _Ids(), 64, kv_block_size=4, cache_namespace="ckpt-b:1")  # type: ignore[arg-type]
    same = Engine(model, _Ids(), 64, kv_block_size=4, cache_namespace="ckpt-a:1")  # type: ignore[arg-type]
    fresh = [Engine(model, _Ids(), 64, kv_block_size=4) for _ in range(2)]  # type: ignore[arg-type]
    from superlab.serve.engine import _Seq

    def hashes(engine: Engine) -> list[bytes]:
        seq = _Seq(GenRequest("x", ids, SamplingParams()), _Ids())  # type: ignore[arg-type]
        engine._extend_hashes(seq, len(ids))
        return seq.hashes

    assert hashes(a) == hashes(same)
    assert not set(hashes(a)) & set(hashes(b))
    assert not set(hashes(fresh[0])) & set(hashes(fresh[1]))  # default: random per engine
    run(a, [GenRequest("x", ids, SamplingParams(max_tokens=1))])
    assert a.kv is not None
    assert a.kv.lookup(hashes(a)) == 3 and a.kv.lookup(hashes(b)) == 0


def test_models_carrying_the_previous_token_do_not_prefix_cache():
    model = _model("full", token_shift=True)
    engine = Engine(model, _Ids(), 64, kv_block_size=4)  # type: ignore[arg-type]
    assert not engine.prefix_caching
    ids = _prompt(6, 10)
    assert run(engine, [GenRequest("a", ids, SamplingParams(max_tokens=5))]) == run(
        engine, [GenRequest("a", ids, SamplingParams(max_tokens=5))]
    )


def test_chunked_prefill_interleaves_with_decoding():
    """A long prompt arrives while a request decodes: it is prefilled 8 tokens a step, and
    the running request gets a token every step; both outputs equal each alone."""
    model = _model("full")
    engine = Engine(model, _Ids(), 64, kv_block_size=4, prefill_tokens=8, prefill_share=None)  # type: ignore[arg-type]
    short = GenRequest("short", _prompt(1, 4), _sampled(1, 20))
    long = GenRequest("long", _prompt(2, 40), _sampled(2, 5))
    engine.submit(short)
    got = {"short": [], "long": []}
    for d in engine.step():
        got[d.request_id] += d.token_ids
    engine.submit(long)
    prefill_steps = 0
    while not engine.idle:
        deltas = {d.request_id: d for d in engine.step()}
        for d in deltas.values():
            got[d.request_id] += d.token_ids
        stats = engine.stats()
        assert stats["prefill_tokens_last_step"] <= 8
        if stats["prefill_tokens_last_step"]:
            prefill_steps += 1
            if len(got["short"]) < 20:
                assert stats["decode_tokens_last_step"] >= 1 and deltas["short"].token_ids
    assert prefill_steps == 5  # 40 tokens, 8 a step
    for r in (short, long):
        assert got[r.id] == run(Engine(model, _Ids(), 64), [r])[r.id]  # type: ignore[arg-type]


def test_prefill_chunks_of_similar_length_share_a_forward():
    lengths = [97, 40, 35, 30, 20, 14, 12, 10, 8, 5, 4, 3]
    chunks = [(object(), n) for n in lengths]
    groups = Engine._groups(chunks, waste=0)  # type: ignore[arg-type]
    assert sorted(n for g in groups for _, n in g) == sorted(lengths)
    for g in groups:
        longest = max(n for _, n in g)
        assert len(g) * longest <= 1.5 * sum(n for _, n in g)
    assert len(groups) < len(lengths)  # short prompts still batch together
    assert len(Engine._groups(chunks, waste=2048)) == 1  # little padding in all: one forward
    # Decode rows: a 4000-key row does not pad eight 120-key rows to its length.
    rows = [(object(), 4000)] + [(object(), 120)] * 8
    assert [len(g) for g in Engine._groups(rows, waste=2048)] == [1, 8]  # type: ignore[arg-type]
    for g in Engine._groups(rows):  # type: ignore[arg-type]
        padded, real = len(g) * max(n for _, n in g), sum(n for _, n in g)
        assert padded <= 1.5 * real or padded - real <= 8192
    engine = Engine(_model("full"), _Ids(), 128, kv_block_size=4)  # type: ignore[arg-type]
    reqs = [GenRequest(str(n), _prompt(n, n), SamplingParams(max_tokens=2)) for n in lengths]
    engine_out = run(engine, reqs)
    for r in reqs[:3]:
        assert engine_out[r.id] == run(Engine(_model("full"), _Ids(), 128), [r])[r.id]  # type: ignore[arg-type]


def test_a_prefill_forward_pads_at_most_half_its_real_tokens():
    """A padded prompt slot costs a whole token's compute: one long prompt does not pad
    eleven short ones to its length (decode rows may pad keys; prompts may not)."""
    lengths = [97, 12, 10, 9, 8, 7, 6, 5, 5, 4, 4, 3]
    model = _model("full", max_seq_len=128)
    engine = Engine(model, _Ids(), 128, kv_block_size=4, prefill_tokens=256)  # type: ignore[arg-type]
    reqs = [
        GenRequest(str(i), _prompt(i, n), SamplingParams(max_tokens=1))
        for i, n in enumerate(lengths)
    ]
    seen = []
    real = model.forward

    def counting(idx_BT, *args, valid_BT=None, **kw):
        if idx_BT.shape[1] > 1:  # a prefill forward
            seen.append((idx_BT.numel(), int(valid_BT.sum())))
        return real(idx_BT, *args, valid_BT=valid_BT, **kw)

    model.forward = counting  # type: ignore[method-assign]
    out = run(engine, reqs)
    del model.forward
    assert sum(r for _, r in seen) == sum(lengths) and len(seen) > 1
    assert all(padded <= 1.5 * r for padded, r in seen), seen
    for r in reqs:
        assert out[r.id] == run(Engine(model, _Ids(), 128), [r])[r.id]  # type: ignore[arg-type]


class _Tight(Engine):
    """Splits decode rows of different lengths into forwards at the least padding."""

    @staticmethod
    def _groups(rows, waste=0):  # type: ignore[override]
        return Engine._groups(rows, waste=0)


def test_decode_rows_of_different_lengths_in_separate_forwards_equal_each_alone():
    model = _model("full", max_seq_len=128)
    reqs = [GenRequest("long", _prompt(1, 70), _sampled(1, 8))]
    reqs += [GenRequest(str(i), _prompt(10 + i, 3), _sampled(i, 8)) for i in range(3)]
    engine = _Tight(model, _Ids(), 128, kv_block_size=4)  # type: ignore[arg-type]
    calls = []
    real = model.forward

    def counting(*args, **kw):
        calls.append(args[0].shape)
        return real(*args, **kw)

    model.forward = counting  # type: ignore[method-assign]
    together = run(engine, reqs)
    del model.forward
    assert sum(1 for shape in calls if shape[1] == 1) > 8  # more decode forwards than steps
    for r in reqs:
        assert together[r.id] == run(Engine(model, _Ids(), 128), [r])[r.id]  # type: ignore[arg-type]


def test_chunked_prefill_equals_one_shot_prefill_logits():
    model = _model("full")
    ids = _prompt(3, 37)
    first = {}
    for budget in (1024, 5):
        engine = Engine(model, _Ids(), 64, kv_block_size=4, prefill_tokens=budget)  # type: ignore[arg-type]
        engine.submit(GenRequest("a", ids, SamplingParams(max_tokens=1, logprobs=5)))
        deltas = []
        while not engine.idle:
            deltas += engine.step()
        first[budget] = deltas[0].logprobs[0]
    assert first[5].token_id == first[1024].token_id
    assert [t for t, _ in first[5].top] == [t for t, _ in first[1024].top]
    for (_, x), (_, y) in zip(first[5].top, first[1024].top, strict=True):
        assert x == pytest.approx(y, abs=1e-5)


def test_a_prompt_with_images_equals_the_full_forward():
    """Two images; prefill chunks of 5 tokens never split an image's 4 placeholders; the
    greedy tokens and log-probs equal re-running the full forward (with pixels) each step."""
    model = tiny_model(64, vision=VISION)
    image = [BOI] + [IMG] * VISION.tokens_per_image + [EOI]
    ids = [3, 4, *image, 5, 6, 7, *image, 8, 9]
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    engine = Engine(model, _Ids(), 64, kv_block_size=4, prefill_tokens=5)  # type: ignore[arg-type]
    p = SamplingParams(max_tokens=6, logprobs=0)
    req = GenRequest("img", ids, p, pixels_NCHW=pixels)
    deltas = run_deltas(engine, [req])
    tokens = [t for d in deltas for t in d.token_ids]
    lps = [lp.logprob for d in deltas for lp in d.logprobs]
    new: list[int] = []
    for _ in range(6):
        with torch.no_grad():
            logits_V = model(torch.tensor([ids + new]), pixels_NCHW=pixels).logits_BTV[0, -1]
        logits_V[IMG] = float("-inf")  # the engine never samples a placeholder
        lp_V = torch.log_softmax(logits_V.float(), -1)
        assert lps[len(new)] == pytest.approx(float(lp_V.max()), abs=1e-4)
        new.append(int(lp_V.argmax()))
    assert tokens == new
    # The same prompt and pixels again: 4 cached blocks (16 tokens, both images inside),
    # the same tokens. Other pixels: block 0 holds image 1's placeholders, so nothing hits.
    before = engine.stats()["prefix_cache_hits"]
    again = run_deltas(engine, [GenRequest("again", ids, p, pixels_NCHW=pixels)])
    assert engine.stats()["prefix_cache_hits"] - before == 16
    assert [t for d in again for t in d.token_ids] == tokens
    before = engine.stats()["prefix_cache_hits"]
    run_deltas(engine, [GenRequest("other", ids, p, pixels_NCHW=pixels.flip(0))])
    assert engine.stats()["prefix_cache_hits"] == before
    with pytest.raises(ValueError, match="pixels_NCHW"):
        engine.submit(GenRequest("bad", ids, p, pixels_NCHW=pixels[:1]))


def test_a_vision_model_never_samples_its_image_placeholder():
    """A generated placeholder would have no pixels: the engine masks it out."""
    model = tiny_model(64, vision=VISION)
    engine = Engine(model, _Ids(), 64)  # type: ignore[arg-type]
    original = model.forward

    def favour_placeholder(*args, **kw):  # the placeholder is the most likely token
        out = original(*args, **kw)
        out.logits_BTV[..., IMG] = 1e4
        return out

    model.forward = favour_placeholder  # type: ignore[method-assign]
    reqs = [GenRequest(str(i), [3, 4, 5], _sampled(i, 6)) for i in range(2)]
    reqs.append(GenRequest("greedy", [3, 4, 5], SamplingParams(max_tokens=6)))
    out = run(engine, reqs)
    assert all(len(t) == 6 and IMG not in t for t in out.values())


def test_stats_names():
    engine = Engine(_model("full"), _Ids(), 64)  # type: ignore[arg-type]
    assert set(engine.stats()) == {
        "prefix_cache_queries",
        "prefix_cache_hits",
        "prefix_cache_hit_rate",
        "preemptions",
        "prefill_tokens_last_step",
        "decode_tokens_last_step",
        "kv_blocks_used",
        "kv_blocks_free",
    }
