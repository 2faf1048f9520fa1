from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from superlab.data.chat import CHAT_TOKENS, encode_chat, ensure_chat_tokens


def old_tokenizer() -> Tokenizer:
    """A tokenizer as superlab trained them before the chat format: no chat tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["the cat sat on the mat"] * 20, trainer)
    return tok


def test_ensure_chat_tokens_appends_them_and_keeps_every_old_id() -> None:
    old = old_tokenizer()
    v = old.get_vocab_size()
    new = ensure_chat_tokens(old)
    assert old.get_vocab_size() == v  # the old one is not changed
    assert [new.token_to_id(t) for t in CHAT_TOKENS] == list(range(v, v + 5))
    text = "the cat <|user|> sat \u4e16"
    assert new.encode("the cat sat \u4e16").ids == old.encode("the cat sat \u4e16").ids
    assert new.token_to_id("<|user|>") in new.encode(text).ids
    chat = encode_chat(new, [{"role": "user", "content": "the cat"}])
    assert chat.ids[0] == v + 1 and chat.ids[-1] == v + 4


def test_ensure_chat_tokens_is_idempotent() -> None:
    once = ensure_chat_tokens(old_tokenizer())
    twice = ensure_chat_tokens(once)
    assert twice.get_vocab_size() == once.get_vocab_size()
    assert twice.to_str() == once.to_str()
