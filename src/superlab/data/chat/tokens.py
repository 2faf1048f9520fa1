"""The chat special tokens, and adding them to a tokenizer trained before they existed."""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer

ROLES = ("system", "user", "assistant", "tool")
ROLE_TOKENS = tuple(f"<|{r}|>" for r in ROLES)
END_OF_TURN = "<|end|>"
CHAT_TOKENS = (*ROLE_TOKENS, END_OF_TURN)
# Where a reply ends: its end of turn, or where the model starts another turn (as a stop
# string, a special token is matched by its id: serve.text).
REPLY_STOPS = (END_OF_TURN, "<|user|>", "<|system|>", "<|tool|>")


def special_token(content: str) -> AddedToken:
    """``content`` as a special added token: matched whole, never normalized or merged."""
    return AddedToken(
        content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True
    )


def ensure_chat_tokens(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of ``tokenizer`` holding every chat token; missing ones get the next ids.

    A tokenizer trained before the chat format lacks them; its ids are unchanged, so a
    model trained with it needs ``model.vocab.resize_vocab`` to the new size.
    """
    out = Tokenizer.from_str(tokenizer.to_str())
    missing = [t for t in CHAT_TOKENS if out.token_to_id(t) is None]
    if missing:
        out.add_special_tokens([special_token(t) for t in missing])
    return out


def chat_token_ids(tokenizer: Tokenizer) -> dict[str, int]:
    """The id of each chat token; a ValueError names the first one ``tokenizer`` lacks."""
    ids = {}
    for t in CHAT_TOKENS:
        i = tokenizer.token_to_id(t)
        if i is None:
            raise ValueError(
                f"the tokenizer has no {t} token (trained before the chat format); "
                "superlab.data.chat.ensure_chat_tokens adds the chat tokens"
            )
        ids[t] = i
    return ids
