"""The shape of long-context probe texts, shared by ``data.probes`` and ``eval.probes``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from superlab.config.section import FieldError, Section


class ProbeSpec(Section):
    """The shape of long-context probe texts (``superlab.data.probes`` makes them)."""

    kinds: list[Literal["recall", "multihop", "passkey"]] = Field(
        default_factory=lambda: ["recall", "multihop"], min_length=1
    )
    pairs: int = Field(default=24, ge=2, description="key-value facts per recall/multihop context")
    # Each context draws its number of facts uniformly from [min_pairs, pairs], so query
    # positions, and with them the chunk relations, spread out; None = always pairs.
    min_pairs: int | None = Field(default=None, ge=2)
    # words: keys drawn from 256 common English nouns (mostly one token each, so a small
    # model can learn recall); letters: random lowercase strings of key_letters letters.
    keys: Literal["words", "letters"] = "words"
    key_letters: int = Field(default=3, ge=2, le=8)
    value_digits: int = Field(default=2, ge=1, le=6)
    passkey_filler: int = Field(default=8, ge=1, description="filler paragraphs per passkey text")
    passkey_depths: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], min_length=1
    )
    passkey_digits: int = Field(default=5, ge=1, le=9)

    @model_validator(mode="after")
    def _depths_in_range(self) -> ProbeSpec:
        if self.keys == "words" and self.pairs + 4 > 256:
            raise FieldError("pairs", f"pairs ({self.pairs}) must be at most 252 with keys 'words'")
        if self.min_pairs is not None and self.min_pairs > self.pairs:
            raise FieldError(
                "min_pairs", f"min_pairs ({self.min_pairs}) exceeds pairs ({self.pairs})"
            )
        for j, d in enumerate(self.passkey_depths):
            if not 0.0 <= d <= 1.0:
                raise FieldError(f"passkey_depths.{j}", f"depth {d} is outside [0, 1]")
        return self
