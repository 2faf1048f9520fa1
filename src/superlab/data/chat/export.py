"""A run as a Hugging Face folder: the weights (``model.hf.export_hf``) and the tokenizer with
the chat template, so ``AutoTokenizer.apply_chat_template`` gives our ids (tests check it).

Files written next to ``config.json`` and ``model.safetensors``:

- ``tokenizer.json``: the run's tokenizer, with the chat tokens (added if it predates them);
- ``tokenizer_config.json``: ``PreTrainedTokenizerFast``, bos/eos/pad, the chat tokens as
  additional special tokens, ``CHAT_TEMPLATE``, ``model_max_length``;
- ``generation_config.json``: generation stops at ``<|endoftext|>`` or ``<|end|>``.

``<|endoftext|>`` is also the bos token, as in GPT-2: documents are packed each followed by
it, so it is what precedes a document's first token (the server starts an empty prompt
from it too). Nothing adds it to a text: the tokenizer has no post-processor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from superlab.common.atomic import atomic_write_json, atomic_write_text
from superlab.common.ckpt import resolve_checkpoint
from superlab.data.chat.template import CHAT_TEMPLATE
from superlab.data.chat.tokens import CHAT_TOKENS, END_OF_TURN, chat_token_ids, ensure_chat_tokens
from superlab.data.tokenizer import EOS, PAD
from superlab.model.hf import export_hf
from superlab.model.hf_arch import Arch
from superlab.model.io import load_model
from superlab.model.vocab import resize_vocab


def tokenizer_config(tokenizer: Tokenizer, max_seq_len: int) -> dict[str, Any]:
    """The ``tokenizer_config.json`` of ``tokenizer`` (which must hold the chat tokens)."""
    chat_token_ids(tokenizer)  # a ValueError when one is missing
    added = {
        str(i): {
            "content": t.content,
            "lstrip": t.lstrip,
            "normalized": t.normalized,
            "rstrip": t.rstrip,
            "single_word": t.single_word,
            "special": t.special,
        }
        for i, t in sorted(tokenizer.get_added_tokens_decoder().items())
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": EOS,
        "eos_token": EOS,
        "pad_token": PAD if tokenizer.token_to_id(PAD) is not None else None,
        "unk_token": None,
        "additional_special_tokens": list(CHAT_TOKENS),
        "added_tokens_decoder": added,
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": max_seq_len,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
    }


def export_tokenizer(tokenizer: Tokenizer, directory: str | Path, max_seq_len: int) -> None:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``generation_config.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = tokenizer_config(tokenizer, max_seq_len)
    eos, end = tokenizer.token_to_id(EOS), tokenizer.token_to_id(END_OF_TURN)
    atomic_write_text(directory / "tokenizer.json", tokenizer.to_str())
    atomic_write_json(directory / "tokenizer_config.json", config)
    generation = {"bos_token_id": eos, "eos_token_id": [eos, end], "pad_token_id": None}
    if config["pad_token"] is not None:
        generation["pad_token_id"] = tokenizer.token_to_id(PAD)
    atomic_write_json(directory / "generation_config.json", generation)


def find_tokenizer(checkpoint: Path) -> Path:
    """``tokenizer.json`` in the checkpoint, or in a ``tokenizer/`` of a directory above it."""
    above = (d / "tokenizer" / "tokenizer.json" for d in checkpoint.parents)
    for path in (checkpoint / "tokenizer.json", *above):
        if path.is_file():
            return path
    raise FileNotFoundError(f"{checkpoint}: no tokenizer.json here or in a tokenizer/ above it")


def export_run(path: str | Path, out: str | Path, arch: Arch = "llama") -> Path:
    """Export a run dir / ``ckpt/`` / ``step-N`` (its newest checkpoint) to ``out``.

    A tokenizer trained before the chat format gets the chat tokens, and the model new
    rows at the mean embedding (``model.vocab.resize_vocab``), in the export only.
    """
    ckpt = resolve_checkpoint(path)
    model = load_model(ckpt)
    tokenizer = ensure_chat_tokens(Tokenizer.from_file(str(find_tokenizer(ckpt))))
    if tokenizer.get_vocab_size() > model.cfg.vocab_size:
        resize_vocab(model, tokenizer.get_vocab_size())
    out = Path(out)
    export_hf(model, out, arch)
    export_tokenizer(tokenizer, out, model.cfg.max_seq_len)
    return ckpt
