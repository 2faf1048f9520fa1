"""Incremental detokenization: the pieces of decoding the whole text after every token,
in work that does not grow with the text's length."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer

from superlab.config.recipe import TokenizerConfig
from superlab.data.chat import END_OF_TURN
from superlab.data.tokenizer import train_tokenizer
from superlab.serve.text import MAX_UNREAD, REPLACEMENT, TextStream, special_ids

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Caf\u00e9 na\u00efve \u00fcber cr\u00e8me b"
    "r\u00fbl\u00e9e.",
    "\u0160\u0165astn\u00e9 \u017eluv\u0165ou\u010dk\u00e9 ko\u0148e, \u0142\u00f3d\u017a i "
    "\u00e5ngstr\u00f6m, S\u00e3o Paulo, Ni\u00f1o.",
    "\u673a\u5668\u5b66\u4e60\u662f\u4eba\u5de5\u667a\u80fd\u7684\u4e00\u4e2a\u5206\u652f"
    "\u3002\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff01",
    "\u0627\u0644\u0633\u0644\u0627\u0645 \u0639\u0644\u064a\u0643\u0645\u060c \u0643\u064a"
    "\u0641 \u062d\u0627\u0644\u0643 \u0627\u0644\u064a\u0648\u0645\u061f",
    "\u0928\u092e\u0938\u094d\u0924\u0947, \u0906\u092a \u0915\u0948\u0938\u0947 \u0939\u0948"
    "\u0902? \u092d\u093e\u0930\u0924 \u090f\u0915 \u0926\u0947\u0936 \u0939\u0948\u0964",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\ud55c\uad6d\uc5b4 \ud14d\uc2a4"
    "\ud2b8, \u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440!",
    "Family \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 and \U0001f44b"
    "\U0001f3fd wave, \U0001f3f3\ufe0f\u200d\U0001f308 flag, \U0001f9d1\U0001f3ff\u200d"
    "\U0001f4bb coder \U0001f600!",
    "Math: \u2200x \u2208 \u211d, x\u00b2 \u2265 0; \u03c0 \u2248 3.14159 \u2014 \u201cquoted"
    "\u201d \u2026 \U0001d54f",
]
# A stop string: one that spans tokens, one inside a multi-byte script, an emoji with a
# joiner, one that never matches, one whose prefix recurs before it matches.
STOPS = [
    (),
    ("lazy dog",),
    ("\u4eba\u5de5",),
    ("\u200d\U0001f308",),
    ("never appears here",),
    ("\u0915\u0948\u0938\u0947", "o"),
    ("br", "S\u00e3o P"),
    ("\u062d\u0627\u0644",),
]


class FullRedecode:
    """Today's output, the old way: decode every id after each token (quadratic)."""

    def __init__(self, tokenizer: Tokenizer, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer, self.stop = tokenizer, tuple(s for s in stop if s)
        self.stop_ids = special_ids(tokenizer, self.stop)
        self.ids: list[int] = []
        self.released, self.stopped = "", False

    def push(self, token_id: int) -> str:
        if token_id in self.stop_ids:
            self.stopped = True
            return self._release(self.tokenizer.decode(self.ids))
        self.ids.append(token_id)
        full = self.tokenizer.decode(self.ids)
        cut = min((i for i in (full.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return self._release(full[:cut])
        safe = len(full.rstrip(REPLACEMENT))
        safe -= self._stop_prefix(full[:safe])
        return self._release(full[:safe])

    def finish(self) -> str:
        return "" if self.stopped else self._release(self.tokenizer.decode(self.ids))

    def _release(self, upto: str) -> str:
        if not upto.startswith(self.released) or len(upto) <= len(self.released):
            return ""
        delta, self.released = upto[len(self.released) :], upto
        return delta

    def _stop_prefix(self, text: str) -> int:
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best


def run(stream: TextStream | FullRedecode, ids: list[int]) -> tuple[list[str], bool, str]:
    pieces = []
    for i in ids:
        pieces.append(stream.push(i))
        if stream.stopped:
            break
    return pieces, stream.stopped, stream.finish()


@pytest.fixture(scope="module", params=[270, 600])
def tok(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """Byte-level BPE trained on a few lines: 270 is nearly bytes alone (every non-ASCII
    character split), 600 merges within and across multi-byte characters."""
    path = tmp_path_factory.mktemp("detok") / "tokenizer.json"
    cfg = TokenizerConfig(vocab_size=request.param, min_frequency=1)
    return train_tokenizer(iter(CORPUS * 3), cfg, path)


def splits_characters(tok: Tokenizer, text: str) -> bool:
    return any(REPLACEMENT in tok.decode([i]) for i in tok.encode(text).ids)


@pytest.mark.parametrize("stop", STOPS, ids=lambda s: "|".join(s) or "none")
def test_pieces_equal_full_redecode_on_multilingual_and_emoji_text(tok, stop) -> None:
    assert sum(splits_characters(tok, t) for t in CORPUS) >= 3  # the held-back path runs
    for text in [*CORPUS, " ".join(CORPUS)]:
        ids = tok.encode(text).ids
        assert run(TextStream(tok, stop), ids) == run(FullRedecode(tok, stop), ids), text


def test_pieces_equal_full_redecode_on_random_ids(tok) -> None:
    """Random ids: bytes that are not UTF-8, runs of them longer than ``MAX_UNREAD``,
    characters split every way, special tokens (skipped when decoding)."""
    rng = random.Random(0)
    vocab = tok.get_vocab_size()
    lone = [i for i in range(vocab) if tok.decode([i]) == REPLACEMENT]  # byte tokens
    for trial in range(150):
        pool = lone if trial % 3 == 0 else range(vocab)
        ids = [rng.choice(pool) for _ in range(rng.randint(1, 60))]
        stop = STOPS[trial % len(STOPS)] + (("\ufffd\ufffd",) if trial % 5 == 0 else ())
        assert run(TextStream(tok, stop), ids) == run(FullRedecode(tok, stop), ids), ids


def test_stop_by_special_token_id(tok) -> None:
    end = tok.token_to_id(END_OF_TURN)
    assert special_ids(tok, (END_OF_TURN,)) == {end}
    for text in CORPUS:
        ids = tok.encode(text).ids
        for cut in (1, len(ids) // 2, len(ids)):
            seq = [*ids[:cut], end, *ids[:3]]
            new, old = (
                run(TextStream(tok, (END_OF_TURN,)), seq),
                run(FullRedecode(tok, (END_OF_TURN,)), seq),
            )
            assert new == old and new[1]
            assert "".join(new[0]) == tok.decode(ids[:cut])  # split characters at the cut too


class CountingTokenizer:
    """Records the number of ids of each decode call."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer, self.lengths = tokenizer, []

    def decode(self, ids: list[int], **kwargs: object) -> str:
        self.lengths.append(len(ids))
        return self.tokenizer.decode(ids, **kwargs)


@pytest.mark.parametrize("garbage", [False, True], ids=["text", "not_utf8"])
def test_work_per_push_does_not_grow_with_length(tok, garbage) -> None:
    """Each push decodes a bounded window and keeps a bounded tail of text, however long
    the sequence (the old way decoded all ids at every push)."""
    if garbage:  # runs of bytes that make no character: the window must still move on
        lone = [i for i in range(tok.get_vocab_size()) if tok.decode([i]) == REPLACEMENT]
        a = tok.token_to_id("a")  # then a character releases the run, as today
        ids = [a if k % 20 == 19 else lone[k % len(lone)] for k in range(3000)]
    else:
        ids = tok.encode(" ".join(CORPUS) * 20).ids
    counting = CountingTokenizer(tok)
    stream = TextStream(counting, stop=("never appears here",))  # type: ignore[arg-type]
    pieces, kept = [], []
    for i in ids:
        pieces.append(stream.push(i))
        kept.append(len(stream.done) + len(stream.released) + len(stream.pending or ""))
    calls = len(counting.lengths)
    pieces.append(stream.finish())
    assert len(ids) > 2500 and "".join(pieces) == tok.decode(ids)
    assert max(counting.lengths) <= 3 * MAX_UNREAD  # ids per decode call: context + unread
    assert calls <= 2 * len(ids) + 4 * len(ids) // MAX_UNREAD  # decode calls per push
    assert max(kept) <= 64  # characters kept
    assert len(counting.lengths) == calls  # and the end decodes no more
