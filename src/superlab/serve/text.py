"""Token ids in, releasable text out: incremental detokenization and stop strings.

Text is released only when no later token can change it: a trailing U+FFFD (the start of
a UTF-8 character split across tokens) and any tail that could still grow into a stop
string are held back. A stop string ends the text just before it (OpenAI's ``stop``).
"""

from __future__ import annotations

from tokenizers import Tokenizer

REPLACEMENT = "\ufffd"


class TextStream:
    """One sequence's generated text, released piece by piece."""

    def __init__(self, tokenizer: Tokenizer, stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.ids: list[int] = []
        self.released = ""
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add a token; return the text newly safe to release (sets ``stopped`` on a stop)."""
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
        """The text held back so far (the sequence ended without a stop string)."""
        if self.stopped:
            return ""
        return self._release(self.tokenizer.decode(self.ids))

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
