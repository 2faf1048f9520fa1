"""Rows of different lengths in one cache: each row's logits equal decoding it alone.

A continuous-batching schedule: a padded prefill, sequences joining (``extend``) and
leaving (``select``) between steps, and a ragged step (one row feeds two tokens while the
others feed one or none), for every attention kind, dense and MoE.
"""

import pytest
import torch

from superlab.config.recipe import AttentionConfig, ModelConfig, MoEConfig
from superlab.model.transformer import Transformer

KINDS = {
    "full": AttentionConfig(kind="full"),
    "sliding": AttentionConfig(kind="sliding", window=5),
    "chunked": AttentionConfig(kind="chunked", chunk_size=6),
    "sparse": AttentionConfig(kind="sparse", block_size=4, top_k_blocks=1, local_blocks=1),
}
PAD = 0


def tiny_model(
    kind: str = "full", mix: str = "", moe: bool = False, max_seq_len: int = 32, **kw
) -> Transformer:
    """A 2-layer model of one attention kind (``KINDS``); ``mix``: a boolean model option
    turned on (``token_shift``, ``smear_keys``); ``kw`` goes to ``ModelConfig``."""
    torch.manual_seed(0)
    base = dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=50)
    cfg = ModelConfig(
        **(base | kw),
        max_seq_len=max_seq_len,
        attention=KINDS[kind],
        moe=MoEConfig(num_experts=4, top_k=2, every=2) if moe else None,
        **({mix: True} if mix else {}),
    )
    return Transformer(cfg).eval()


class Batch:
    """Drives a cache the way a continuous-batching engine does, recording each row's logits."""

    def __init__(self, model: Transformer, seqs: list[torch.Tensor]) -> None:
        self.model, self.seqs = model, seqs
        self.cache = model.new_cache()
        self.rows: list[int] = []  # sequence id of each cache row
        self.done: dict[int, int] = {}  # sequence id -> tokens fed so far
        self.logits: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(seqs))}

    def step(self, take: dict[int, int], left_pad: bool = False) -> None:
        """Feed ``take[seq]`` next tokens of each row (0: a padded row), right- or left-padded."""
        T = max(take.get(s, 0) for s in self.rows)
        idx = torch.full((len(self.rows), T), PAD)
        valid = torch.zeros((len(self.rows), T), dtype=torch.bool)
        for r, s in enumerate(self.rows):
            n, at = take.get(s, 0), self.done[s]
            cols = slice(T - n, T) if left_pad else slice(0, n)
            idx[r, cols] = self.seqs[s][at : at + n]
            valid[r, cols] = True
        out = self.model(idx, cache=self.cache, valid_BT=valid).logits_BTV
        for r, s in enumerate(self.rows):
            self.logits[s].append(out[r][valid[r]])
            self.done[s] += take.get(s, 0)

    def join(self, ids: list[int], prefill: list[int]) -> None:
        """Prefill new sequences in a cache of their own (left-padded), then append its rows."""
        new = Batch(self.model, self.seqs)
        new.rows, new.done, new.logits = ids, dict.fromkeys(ids, 0), self.logits
        new.step(dict(zip(ids, prefill, strict=True)), left_pad=True)
        self.cache.extend(new.cache)
        self.rows += ids
        self.done.update(new.done)

    def leave(self, ids: list[int]) -> None:
        keep = [r for r, s in enumerate(self.rows) if s not in ids]
        self.cache.select(keep)
        self.rows = [self.rows[r] for r in keep]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("moe", [False, True], ids=["dense", "moe"])
@pytest.mark.parametrize("mix", ["", "token_shift", "smear_keys"])
@torch.no_grad()
def test_continuous_batching_equals_each_sequence_alone(kind, moe, mix):
    model = tiny_model(kind, mix, moe)
    g = torch.Generator().manual_seed(1)
    lengths = [12, 19, 9, 22]
    seqs = [torch.randint(1, 50, (n,), generator=g) for n in lengths]
    b = Batch(model, seqs)
    b.rows, b.done = [0, 1], {0: 0, 1: 0}
    b.step({0: 5, 1: 9})  # right-padded prefill of two prompts
    for _ in range(3):
        b.step({0: 1, 1: 1})
    b.join([2], [4])  # a new request joins the running batch
    b.step({0: 2, 1: 1, 2: 0})  # ragged step: row 2 waits, row 0 feeds two tokens
    for _ in range(2):
        b.step({0: 1, 1: 1, 2: 1})
    assert b.done[0] == 12
    b.leave([0])  # finished
    b.join([3], [11])
    while any(b.done[s] < lengths[s] for s in b.rows):
        b.step({s: int(b.done[s] < lengths[s]) for s in b.rows})
        finished = [s for s in b.rows if b.done[s] == lengths[s]]
        if finished and len(finished) < len(b.rows):
            b.leave(finished)
    for s, seq in enumerate(seqs):
        alone_TV = model(seq[None]).logits_BTV[0]
        batched_TV = torch.cat(b.logits[s])
        torch.testing.assert_close(batched_TV, alone_TV, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("kind", "bound"), [("sliding", 5), ("chunked", 6)])
@torch.no_grad()
def test_local_caches_stay_bounded_with_rows_at_different_positions(kind, bound):
    model = tiny_model(kind)
    cache = model.new_cache()
    idx = torch.randint(1, 50, (3, 9))
    valid = torch.tensor([[True] * 9, [True] * 4 + [False] * 5, [True] * 7 + [False] * 2])
    model(idx, cache=cache, valid_BT=valid)
    for _ in range(30):
        model(torch.randint(1, 50, (3, 1)), cache=cache)
        assert len(cache) <= bound
    assert cache.pos_B.tolist() == [39, 34, 37]


@torch.no_grad()
def test_padding_is_never_kept_and_pos_needs_equal_rows():
    model = tiny_model("full")
    cache = model.new_cache()
    valid = torch.tensor([[True, True, True], [False, True, True]])  # row 1 left-padded
    model(torch.randint(1, 50, (2, 3)), cache=cache, valid_BT=valid)
    layer = cache.layers[0]
    assert layer.pos_BS.tolist() == [[0, 1, 2], [-1, 0, 1]]
    with pytest.raises(ValueError, match="different positions"):
        _ = cache.pos
    cache.select([1])  # the padding column is empty in every remaining row: cut
    assert layer.pos_BS.tolist() == [[0, 1]] and cache.pos == 2
    with pytest.raises(ValueError, match="valid_BT"):
        model(torch.zeros(1, 2, dtype=torch.long), valid_BT=torch.ones(1, 2, dtype=torch.bool))
