"""Token ids in, releasable text out: incremental detokenization and stop strings.

Text is released only when no later token can change it: a UTF-8 character split across
tokens (its bytes decode to a trailing U+FFFD) and any tail that could still grow into a
stop string are held back. A stop string ends the text just before it (OpenAI's ``stop``).
A stop string that is a special token of the tokenizer (the chat format's ``<|end|>``) is
matched by id: decoding skips special tokens, so its text never appears.

Each token costs work independent of the text's length: only the new tokens are decoded,
with the token before them as context (vLLM's incremental detokenization, its
``detokenize_incrementally``: decoders such as SentencePiece's Metaspace treat a text's
first token differently, so a token is decoded after its neighbour and the neighbour's own
text is subtracted), and stop strings are searched only where a new match could start.
"""

from __future__ import annotations

from tokenizers import Tokenizer

REPLACEMENT = "\ufffd"


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
        self.text = ""  # the text of ids[:read], whole characters only
        self.prefix = 0  # ids[prefix:read] are decoded again as context for the next ones
        self.read = 0
        self.released = ""
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add a token; return the text newly safe to release (sets ``stopped`` on a stop)."""
        if token_id in self.stop_ids:  # the text so far is whole: release all of it
            self.stopped = True
            return self._release(self.tokenizer.decode(self.ids))
        self.ids.append(token_id)
        self._decode_new()
        full = self.text
        # A match starting earlier would lie inside text already searched (and released).
        start = max(0, len(self.released) - self.longest_stop + 1)
        cut = min((i for i in (full.find(s, start) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            return self._release(full[:cut])
        return self._release(full[: len(full) - self._stop_prefix(full)])

    def finish(self) -> str:
        """The text held back so far (the sequence ended without a stop string)."""
        if self.stopped:
            return ""
        return self._release(self.tokenizer.decode(self.ids))

    def _decode_new(self) -> None:
        """Extend ``text`` with what the tokens after ``read`` add, once they end on a whole
        character (a split one decodes to a trailing U+FFFD until its last byte comes)."""
        before = self.tokenizer.decode(self.ids[self.prefix : self.read])
        after = self.tokenizer.decode(self.ids[self.prefix :])
        if after.endswith(REPLACEMENT) or not after.startswith(before):
            return
        self.text += after[len(before) :]
        self.prefix, self.read = self.read, len(self.ids)

    def _release(self, upto: str) -> str:
        if not upto.startswith(self.released) or len(upto) <= len(self.released):
            return ""  # nothing new (or an earlier piece changed: wait until it settles)
        delta = upto[len(self.released) :]
        self.released = upto
        return delta

    def _stop_prefix(self, text: str) -> int:
        """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(text)), best, -1):
                if text.endswith(s[:k]):
                    best = k
                    break
        return best
