"""Helpers for the eval tests: a small tokenizer, tiny models, an oracle LM, a run directory."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from superlab.common import RunDir
from superlab.config.recipe import ModelConfig, ProbeSpec, TokenizerConfig
from superlab.data.document import Document
from superlab.data.pack import pack
from superlab.data.probes.generate import make_items, training_document
from superlab.data.split import HeldoutSplit
from superlab.data.tokenizer import train_tokenizer
from superlab.model import Transformer, save_model
from superlab.model.transformer import ModelOutput

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "was",
    "for",
    "on",
    "as",
    "with",
    "by",
    "at",
    "from",
    "his",
    "her",
    "that",
    "it",
    "an",
    "which",
    "were",
    "are",
    "city",
    "river",
    "king",
    "army",
    "music",
    "school",
    "history",
    "science",
    "church",
    "village",
    "island",
    "language",
    "north",
    "south",
    "war",
    "team",
    "film",
    "album",
    "species",
    "district",
    "family",
    "company",
    "first",
    "second",
    "new",
]


def english(seed: int | str, words: int = 60) -> str:
    """Deterministic English-like text of ``words`` words."""
    rng = random.Random(f"english:{seed}")
    out = []
    for _ in range(words):
        out.append(rng.choice(WORDS))
        if rng.random() < 0.1:
            out[-1] += "."
    return " ".join(out).capitalize() + "."


def tokenizer(path: Path, vocab: int = 400) -> Tokenizer:
    """A byte-level BPE trained on probe texts and English-like text."""
    spec = ProbeSpec(kinds=["recall", "multihop", "passkey"])
    texts = [english(i) for i in range(60)]
    texts += [training_document(k, spec, 9, i, 4) for k in spec.kinds for i in range(20)]
    return train_tokenizer(iter(texts), TokenizerConfig(vocab_size=vocab), path)


def tiny_model(vocab: int, seed: int = 0, **model: Any) -> Transformer:
    torch.manual_seed(seed)
    cfg = {
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 4,
        "n_kv_heads": 2,
        "vocab_size": vocab,
        "max_seq_len": 256,
        **model,
    }
    return Transformer(ModelConfig.model_validate(cfg))


class OracleLM(torch.nn.Module):
    """Predicts the next token of whichever known sequence a row starts with.

    ``blind(sequence_index, position) -> bool``: positions where it predicts a wrong token
    instead (token 2, or 3 when the right one is 2), to fake what a model cannot see.
    """

    def __init__(self, sequences: Sequence[list[int]], vocab: int, blind: Any = None) -> None:
        super().__init__()
        self.sequences = [list(s) for s in sequences]
        self.vocab = vocab
        self.blind = blind or (lambda i, t: False)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, idx_BT: torch.Tensor, *args: Any, **kwargs: Any) -> ModelOutput:
        B, T = idx_BT.shape
        logits_BTV = torch.zeros(B, T, self.vocab)
        for b in range(B):
            row = idx_BT[b].tolist()
            k = max(
                range(len(self.sequences)),
                key=lambda j: _common_prefix(self.sequences[j], row),
            )
            seq = self.sequences[k]
            for t in range(T):
                nxt = seq[t + 1] if t + 1 < len(seq) else 0
                if self.blind(k, t):
                    nxt = 3 if nxt == 2 else 2
                logits_BTV[b, t, nxt] = 10.0
        return ModelOutput(logits_BTV, None, torch.zeros(()))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def write_shards(
    run: RunDir, tok: Tokenizer, train: list[str], heldout: list[str], shard_tokens: int = 2048
) -> dict[str, Any]:
    """Pack ``train`` and ``heldout`` texts into ``run.shards`` (the data stage's format)."""
    docs = [Document(id=f"t{i}", text=t) for i, t in enumerate(train)]
    docs += [Document(id=f"h{i}", text=t) for i, t in enumerate(heldout)]
    forced = frozenset(f"h{i}" for i in range(len(heldout)))
    return pack(docs, tok, HeldoutSplit(0.0, forced), shard_tokens, run.shards)


def write_checkpoint(run: RunDir, model: torch.nn.Module, step: int) -> Path:
    """A complete ``ckpt/step-N`` with the model and a state.json."""
    ckpt = run.ckpt / f"step-{step}"
    save_model(model, ckpt)  # type: ignore[arg-type]
    (ckpt / "state.json").write_text(json.dumps({"step": step}))
    return ckpt


def probe_texts(kind: str, n: int, seed: int = 0) -> list[str]:
    """Prompt + answer of ``n`` eval items."""
    return [it.prompt + it.answer for it in make_items(kind, ProbeSpec(), seed, n)]


def shard_texts(run: RunDir, tok: Tokenizer, split: str) -> list[str]:
    """Decode every document of a split back to text."""
    index = json.loads((run.shards / "index.json").read_text())
    texts = []
    for sh in index["splits"][split]:
        ids = np.fromfile(run.shards / sh["file"], dtype=index["dtype"])
        starts = [*np.load(run.shards / sh["docs_file"]).tolist(), len(ids)]
        for a, b in itertools.pairwise(starts):
            texts.append(tok.decode(ids[a : b - 1].tolist()))
    return texts
