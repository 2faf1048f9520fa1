from __future__ import annotations

from pathlib import Path

import pytest

from superlab.config.recipe import TokenizerConfig
from superlab.data.errors import DataError
from superlab.data.tokenizer import EOS, PAD, eos_id, load_tokenizer, train_tokenizer

from .helpers import english


def test_train_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "tok" / "tokenizer.json"
    texts = (english(i) for i in range(200))
    tok = train_tokenizer(texts, TokenizerConfig(vocab_size=300), path)
    assert tok.get_vocab_size() == 300
    assert (tok.token_to_id(EOS), tok.token_to_id(PAD)) == (0, 1)
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temporaries

    loaded = load_tokenizer(path)
    assert eos_id(loaded) == 0
    text = english(999) + "\nHéllo wörld, 世界 🙂\ttabs  and  spaces\n"
    ids = loaded.encode(text, add_special_tokens=False).ids
    assert ids == tok.encode(text, add_special_tokens=False).ids
    assert loaded.decode(ids) == text  # byte-level: every string round-trips
    assert len(ids) < len(text.encode()) / 2  # merges were learned: fewer tokens than bytes


def test_small_corpus_gives_a_smaller_vocab(tmp_path: Path) -> None:
    tok = train_tokenizer(iter(["ab ab ab"]), TokenizerConfig(vocab_size=1000), tmp_path / "t.json")
    assert 258 <= tok.get_vocab_size() < 1000  # 256 bytes + 2 specials + the few merges


def test_load_missing_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no tokenizer here"):
        load_tokenizer(tmp_path / "tokenizer.json")
