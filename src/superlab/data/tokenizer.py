"""Byte-level BPE (GPT-2 style) trained with Hugging Face ``tokenizers``; one tokenizer.json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from superlab.common import atomic_write_text
from superlab.config.recipe import TokenizerConfig
from superlab.data.chat.tokens import CHAT_TOKENS, special_token
from superlab.data.errors import DataError

EOS = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (EOS, PAD)  # ids 0 and 1: the trainer adds special tokens first


def train_tokenizer(texts: Iterator[str], cfg: TokenizerConfig, path: str | Path) -> Tokenizer:
    """Train byte-level BPE on ``texts`` and save it atomically as ``path`` (tokenizer.json).

    The vocabulary holds all 256 bytes, so any text encodes; it may end up smaller than
    ``cfg.vocab_size`` when the corpus has fewer merges to offer. The chat tokens
    (``data.chat.CHAT_TOKENS``) are added after the merges are learned and take the last
    ids, so ``cfg.vocab_size`` counts them and every other id is the one BPE gives.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size - len(CHAT_TOKENS),
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens([special_token(t) for t in CHAT_TOKENS])
    atomic_write_text(path, tok.to_str())
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer.json written by ``train_tokenizer``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no tokenizer here; run the data stage first")
    tok = Tokenizer.from_file(str(path))
    if tok.token_to_id(EOS) is None:
        raise DataError(f"{path}: tokenizer has no {EOS} token")
    return tok


def eos_id(tok: Tokenizer) -> int:
    """The id of ``<|endoftext|>``, appended after every document."""
    i = tok.token_to_id(EOS)
    assert i is not None, f"tokenizer has no {EOS}"
    return i
