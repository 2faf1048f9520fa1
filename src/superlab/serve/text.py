"""Token ids in, releasable text out: incremental detokenization and stop strings.

Text is released only when no later token can change it: a UTF-8 character split across
tokens (its bytes decode to a trailing U+FFFD) and any tail that could still grow into a
stop string are held back. A stop string ends the text just before it (OpenAI's ``stop``).
A stop string that is a special token of the tokenizer (the chat format's ``<|end|>``) is
matched by id: decoding skips special tokens, so its text never appears.

The released pieces are those of decoding the whole sequence after every token (the
reference kept in ``tests/serve/test_detok.py``), but each token costs work independent of
the text's length (vLLM's ``detokenize_incrementally``, TGI's ``decode_token``):

- only a window of ids is decoded: ``ids[prefix:read]`` (already read, kept as context:
  decoders such as SentencePiece's Metaspace treat a text's first token differently) and
  ``ids[prefix:]``; the difference is the new text. The window moves on once that text
  ends on a whole character, or, after ``MAX_UNREAD`` tokens that never do (bytes that are
  not UTF-8), at a token boundary that splits no character;
- the text is kept only from ``base`` on, a bounded tail: what is not yet released, plus
  the last ``len(longest stop) - 1`` characters, where a stop string could still start;
- stop strings are searched in that tail only, where a new match could start.

Only a sequence that ends with text still held back by a decoder that is not prefix-stable
(one whose window text does not start with its context's text) decodes the whole sequence
once, at its end.
"""

from __future__ import annotations

from tokenizers import Tokenizer

REPLACEMENT = "\ufffd"
# Tokens past ``read`` before an unfinished window is cut (a UTF-8 character is 4 bytes at
# most, so its unfinished tail lies in the last 3 tokens).
MAX_UNREAD = 8


def special_ids(tokenizer: Tokenizer, names: tuple[str, ...]) -> set[int]:
    """The ids of those ``names`` that are special tokens of ``tokenizer``."""
    added = getattr(tokenizer, "get_added_tokens_decoder", None)  # a wrapper may lack it
    if not names or added is None:
        return set()
    special = {t.content: i for i, t in added().items() if t.special}
    return {special[s] for s in names if s in special}


class TextStream:
    """One sequence's generated text, released piece by piece."""

    def __init__(self, tokenizer: Tokenizer, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.longest_stop = max((len(s) for s in self.stop), default=0)
        self.stop_ids = special_ids(tokenizer, self.stop)
        self.ids: list[int] = []
        self.prefix = 0  # ids[prefix:read] are decoded again as context for the next ones
        self.read = 0
        self.context: str | None = None  # decode(ids[prefix:read]), once asked for
        # Characters are counted from the start of the text; only those from base on are kept.
        self.base = 0
        self.done = ""  # the text of ids[:read] from base on (whole characters)
        self.pending: str | None = ""  # the text ids[read:] add (None: not known)
        self.released = ""  # the released text from base on
        self.released_len = 0
        self.diverged = False  # released text an earlier decode changed: release no more
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add a token; return the text newly safe to release (sets ``stopped`` on a stop)."""
        if token_id in self.stop_ids:  # the text so far is whole: release all of it
            self.stopped = True
            return self._release(self._whole())
        self.ids.append(token_id)
        self._decode_new()
        text = self.done + (self.pending or "")  # the text from base on
        # A match starting earlier would lie inside text already searched (and released).
        start = max(0, self.released_len - self.longest_stop + 1) - self.base
        cut = min((i for i in (text.find(s, start) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return self._release(text[:cut])
        safe = len(text.rstrip(REPLACEMENT))
        out = self._release(text[: safe - self._stop_prefix(text[:safe])])
        self._trim()
        return out

    def finish(self) -> str:
        """The text held back so far (the sequence ended without a stop string)."""
        if self.stopped:
            return ""
        return self._release(self._whole())

    def _whole(self) -> str:
        """The text of every id so far, from base on, split characters included."""
        if self.pending is not None:
            return self.done + self.pending
        whole = self.tokenizer.decode(self.ids)  # once, at the end (see the module's note)
        return whole[self.base :]

    def _decode_new(self) -> None:
        """Set ``pending`` to what the tokens after ``read`` add; move them into ``done``
        once they end on a whole character (a split one decodes to a trailing U+FFFD until
        its last byte comes)."""
        if self.context is None:
            self.context = self.tokenizer.decode(self.ids[self.prefix : self.read])
        before = self.context
        after = self.tokenizer.decode(self.ids[self.prefix :])
        if not after.startswith(before):
            self.pending = None  # not settled: hold back what follows ``done``
            return
        self.pending = after[len(before) :]
        if not self.pending.endswith(REPLACEMENT):
            self._commit(len(self.ids), self.pending)
        elif len(self.ids) - self.read > MAX_UNREAD:
            self._cut(before, after)

    def _cut(self, before: str, after: str) -> None:
        """Commit an unfinished window at a token boundary no character spans."""
        for c in range(len(self.ids) - 3, max(self.read, len(self.ids) - 7), -1):
            mid = self.tokenizer.decode(self.ids[self.prefix : c])
            if mid.startswith(before) and after.startswith(mid):  # c splits no character
                self._commit(c, mid[len(before) :])
                self.pending = after[len(mid) :]
                return

    def _commit(self, upto: int, text: str) -> None:
        self.done += text
        self.prefix, self.read, self.context, self.pending = self.read, upto, None, ""

    def _release(self, upto: str) -> str:
        """Release ``upto`` (text from base on) past what was released, if it extends it."""
        if self.diverged or not upto.startswith(self.released):
            return ""  # an earlier piece changed: wait until it settles
        if len(upto) <= len(self.released):
            return ""
        delta = upto[len(self.released) :]
        self.released = upto
        self.released_len = self.base + len(upto)
        return delta

    def _trim(self) -> None:
        """Forget text before the last ``longest_stop - 1`` characters released and done."""
        keep = max(0, self.longest_stop - 1)
        drop = min(len(self.done), len(self.released)) - keep
        if drop <= 0:
            return
        if self.done[:drop] != self.released[:drop]:
            self.diverged = True  # the old text can no longer match what was released
        self.base += drop
        self.done, self.released = self.done[drop:], self.released[drop:]

    def _stop_prefix(self, text: str) -> int:
        """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best
