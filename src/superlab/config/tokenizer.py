"""The ``tokenizer`` section."""

from __future__ import annotations

from pydantic import Field

from superlab.config.section import Section


class TokenizerConfig(Section):
    """Byte-level BPE trained on the cleaned corpus."""

    vocab_size: int = Field(default=4096, ge=260, le=1_000_000)
    min_frequency: int = Field(default=2, ge=1)
