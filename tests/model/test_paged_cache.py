"""Paged KV cache: logits equal the full forward for every kind, blocks are allocated and
freed by the kind's rule, joining or leaving touches no one else's blocks, the block pool's
reference counts and LRU eviction, and chunked prefill equals one-shot prefill."""

import pytest
import torch
from tests.model.test_cache_batched import KINDS, tiny_model

from superlab.config.model import LayerSpec
from superlab.model.block_pool import BlockPool
from superlab.model.paged_cache import PagedKVCache
from superlab.model.transformer import Transformer

P = 4  # KV block size in these tests


def _model(kind: str = "full", mix: str = "", moe: bool = False, **kw) -> Transformer:
    return tiny_model(kind, mix, moe, max_seq_len=64, **kw)


def _mixed() -> Transformer:
    """Layers of three kinds: sliding, full and chunked (three groups of block tables)."""
    pattern = [
        LayerSpec(attention="sliding", window=5),
        LayerSpec(attention="full"),
        LayerSpec(attention="chunked", chunk_size=6),
    ]
    return tiny_model(n_layers=3, layer_pattern=pattern, max_seq_len=64)


def _feed(model, cache, keys, seqs, done, take) -> dict:
    """One ragged forward: ``take[k]`` next tokens of each bound sequence; its logits."""
    T = max(take[k] for k in keys)
    idx = torch.zeros(len(keys), T, dtype=torch.long)
    valid = torch.zeros(len(keys), T, dtype=torch.bool)
    for r, k in enumerate(keys):
        n = take[k]
        idx[r, :n] = seqs[k][done[k] : done[k] + n]
        valid[r, :n] = True
        assert cache.reserve(k, done[k] + n)
    cache.bind(keys)
    with torch.no_grad():
        out = model(idx, cache=cache, valid_BT=valid).logits_BTV
    got = {}
    for r, k in enumerate(keys):
        got[k] = out[r][valid[r]]
        done[k] += take[k]
    return got


def _schedule(model, cache, seqs):
    """Sequences joining at different steps, ragged steps, one leaving early; each
    sequence's logits in order."""
    logits = {k: [] for k in seqs}
    done = dict.fromkeys(seqs, 0)
    plan = [  # (keys bound, tokens each)
        ({0: 7}),
        ({0: 1, 1: 5}),
        ({0: 3, 1: 1, 2: 9}),
        ({0: 1, 1: 0, 2: 1}),
        ({1: 6, 2: 1}),
    ] + [{0: 1, 1: 1, 2: 1}] * 8
    for step in plan:
        for k in step:
            if k not in cache.seqs and done[k] == 0:
                cache.add(k)
        keys = [k for k in step if k in cache.seqs]
        take = {k: min(step[k], len(seqs[k]) - done[k]) for k in keys}
        if not any(take.values()):
            continue
        for k, v in _feed(model, cache, keys, seqs, done, take).items():
            logits[k].append(v)
        for k in keys:
            if done[k] == len(seqs[k]):
                cache.remove(k)
    return {k: torch.cat(v) for k, v in logits.items()}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("variant", ["dense", "moe", "token_shift", "smear_keys"])
def test_paged_logits_equal_the_full_forward(kind, variant):
    moe = variant == "moe"
    mix = variant if variant in ("token_shift", "smear_keys") else ""
    model = _model(kind, mix, moe)
    gen = torch.Generator().manual_seed(1)
    seqs = {k: torch.randint(0, 50, (n,), generator=gen) for k, n in enumerate([20, 15, 18])}
    got = _schedule(model, model.new_paged_cache(30, P), seqs)
    for k, ids in seqs.items():
        with torch.no_grad():
            want = model(ids[None]).logits_BTV[0]
        torch.testing.assert_close(got[k], want, atol=1e-5, rtol=1e-5)


def test_a_layer_pattern_mixing_kinds_shares_tables_per_config():
    model = _mixed()
    cache = model.new_paged_cache(30, P)
    assert [g.cfg.kind for g in cache.groups] == ["sliding", "full", "chunked"]
    gen = torch.Generator().manual_seed(2)
    seqs = {k: torch.randint(0, 50, (n,), generator=gen) for k, n in enumerate([20, 15, 18])}
    got = _schedule(model, cache, seqs)
    for k, ids in seqs.items():
        with torch.no_grad():
            want = model(ids[None]).logits_BTV[0]
        torch.testing.assert_close(got[k], want, atol=1e-5, rtol=1e-5)
    assert cache.blocks_used == 0  # every sequence left: all blocks back


@pytest.mark.parametrize(
    ("kind", "held"),
    [
        ("full", [1, 2, 3, 4, 5, 6]),  # every block: ceil(n / P)
        ("sparse", [1, 2, 3, 4, 5, 6]),  # chooses among every earlier block: keeps all
        # window 5: keys from n - 4 on (n = 4, 8, ..., 24); blocks wholly before are freed
        ("sliding", [1, 1, 1, 1, 1, 1]),
        # chunk 6: keys from n // 6 * 6 on: none kept at n = 12 and 24
        ("chunked", [1, 1, 0, 1, 1, 0]),
    ],
)
def test_blocks_are_allocated_and_freed_by_the_kind(kind, held):
    model = _model(kind)
    cache = model.new_paged_cache(10, P)
    cache.add("a")
    ids = torch.randint(0, 50, (24,), generator=torch.Generator().manual_seed(3))
    done = {"a": 0}
    seen = []
    for _ in range(6):
        _feed(model, cache, ["a"], {"a": ids}, done, {"a": 4})
        seen.append(cache.groups[0].pool.used)
    assert seen == held
    cache.remove("a")
    assert cache.groups[0].pool.used == 0 and cache.groups[0].pool.available == 10


def test_mixed_kinds_free_per_group():
    model = _mixed()
    cache = model.new_paged_cache(20, P)
    cache.add("a")
    ids = torch.randint(0, 50, (24,), generator=torch.Generator().manual_seed(4))
    _feed(model, cache, ["a"], {"a": ids}, {"a": 0}, {"a": 24})
    used = [g.pool.used for g in cache.groups]
    assert used == [1, 6, 0]  # sliding 5: keys 20.. (block 5); full: all; chunk 6: none


def test_joining_and_leaving_touch_no_other_sequence():
    model = _model("full")
    cache = model.new_paged_cache(20, P)
    gen = torch.Generator().manual_seed(7)
    seqs = {k: torch.randint(0, 50, (9,), generator=gen) for k in "ab"}
    done = {"a": 0, "b": 0}
    cache.add("a")
    _feed(model, cache, ["a"], seqs, done, {"a": 9})
    table = list(cache.seqs["a"].tables[0])
    layer = cache.layers[0]
    before = layer.k_NPGC[table].clone(), layer.v_NPGC[table].clone()
    cache.add("b")
    _feed(model, cache, ["b"], seqs, done, {"b": 9})
    cache.remove("b")
    assert cache.seqs["a"].tables[0] == table
    assert torch.equal(layer.k_NPGC[table], before[0])
    assert torch.equal(layer.v_NPGC[table], before[1])


def test_chunked_prefill_equals_one_shot_prefill():
    for kind in KINDS:
        model = _model(kind)
        ids = torch.randint(0, 50, (30,), generator=torch.Generator().manual_seed(5))
        one, chunks = model.new_paged_cache(20, P), model.new_paged_cache(20, P)
        one.add(0)
        chunks.add(0)
        whole = _feed(model, one, [0], {0: ids}, {0: 0}, {0: 30})[0]
        done = {0: 0}
        pieces = [_feed(model, chunks, [0], {0: ids}, done, {0: n})[0] for n in (7, 5, 11, 7)]
        torch.testing.assert_close(torch.cat(pieces), whole, atol=1e-5, rtol=0)


def test_pool_refcounts_lru_eviction_and_prefix_lookup():
    pool = BlockPool(3)
    a, b, c = pool.allocate(), pool.allocate(), pool.allocate()
    assert (a, b, c) == (0, 1, 2) and pool.allocate() is None and pool.available == 0
    pool.register(a, b"A")
    pool.register(b, b"B")
    pool.acquire(a)  # shared by two sequences
    pool.release(a)
    assert pool.available == 0  # still held once: never evicted
    pool.release(b)  # cached, refs 0
    pool.release(a)  # cached, released after b
    pool.release(c)  # not registered: free
    assert pool.available == 3 and pool.lookup(b"A") == a and pool.lookup(b"B") == b
    assert pool.allocate() == c  # the free list first, no eviction
    assert pool.allocate() == b and pool.lookup(b"B") is None  # least recently released
    assert pool.lookup(b"A") == a
    pool.acquire(a)  # a hit revives the cached block
    assert pool.allocate() is None and pool.refs == [1, 1, 1]
    with pytest.raises(ValueError, match="released more often"):
        BlockPool(1).release(0)
    with pytest.raises(ValueError, match="kv_cache_blocks"):
        BlockPool(0)


def test_attach_reuses_cached_blocks_without_computing_them():
    model = _model("full")
    cache = model.new_paged_cache(10, P)
    ids = torch.randint(0, 50, (10,), generator=torch.Generator().manual_seed(6))
    hashes = [b"h0", b"h1"]  # the caller's keys for blocks 0 and 1 (positions 0..7)
    cache.add("a")
    cache.set_hashes("a", hashes)
    _feed(model, cache, ["a"], {"a": ids}, {"a": 0}, {"a": 10})
    blocks_a = cache.seqs["a"].tables[0][:2]
    assert cache.lookup([*hashes, b"h2"]) == 2
    cache.add("b")
    cache.attach("b", hashes)
    assert cache.seqs["b"].tables[0] == blocks_a and cache.length("b") == 8
    got = _feed(model, cache, ["b"], {"b": ids}, {"b": 8}, {"b": 2})["b"]
    with torch.no_grad():
        want = model(ids[None]).logits_BTV[0, 8:]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    cache.remove("a")
    cache.remove("b")
    pool = cache.groups[0].pool
    assert pool.used == 0 and sorted(pool.lru) == sorted(blocks_a)  # cached, refs 0
    with pytest.raises(ValueError, match="reserve blocks"):
        cache.add("c")
        cache.bind(["c"])
        with torch.no_grad():
            model(ids[None, :5], cache=cache)


def test_a_paged_cache_refuses_bad_sizes():
    cfg = _model().cfg
    with pytest.raises(ValueError, match="kv_block_size"):
        PagedKVCache(cfg, 4, block_size=0)
    with pytest.raises(ValueError, match="kv_cache_blocks"):
        PagedKVCache(cfg, 0)
