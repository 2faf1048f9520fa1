"""Small real fakes shared by the serve tests: a byte-level BPE tokenizer and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from superlab.config.model import LayerSpec
from superlab.config.recipe import AttentionConfig, ModelConfig, TokenizerConfig
from superlab.data.tokenizer import train_tokenizer
from superlab.model import Transformer, save_model

TEXT = [
    "The history of mathematics is the study of the origins of discoveries in mathematics.",
    "A romantic comedy is a film about love that ends happily for the couple.",
    "The quick brown fox jumps over the lazy dog. Caf\u00e9 na\u00efve \u00fcber \u65e5\u672c",
    "Numbers like 1, 2, 3 and 42 appear in many stories about counting sheep at night.",
]


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return train_tokenizer(iter(TEXT * 5), TokenizerConfig(vocab_size=320, min_frequency=1), path)


def tiny_model(
    vocab: int, kind: str = "full", max_seq_len: int = 64, seed: int = 0, **kw: object
) -> Transformer:
    """A 2-layer model of one attention kind (``mixed``: a sliding layer, then a full one);
    ``kw`` goes to ``ModelConfig``."""
    attention = {
        "full": AttentionConfig(kind="full"),
        "sliding": AttentionConfig(kind="sliding", window=6),
        "chunked": AttentionConfig(kind="chunked", chunk_size=8),
        "sparse": AttentionConfig(kind="sparse", block_size=4, top_k_blocks=1, local_blocks=1),
        "mixed": AttentionConfig(kind="full"),
    }[kind]
    if kind == "mixed":
        sliding = LayerSpec(attention="sliding", window=6)
        kw["layer_pattern"] = [sliding, LayerSpec(attention="full")]
    torch.manual_seed(seed)
    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=vocab,
        max_seq_len=max_seq_len,
        attention=attention,
        tie_embeddings=False,
        **kw,  # type: ignore[arg-type]
    )
    model = Transformer(cfg).eval()
    assert model.lm_head is not None
    with torch.no_grad():  # sharper logits than the 0.02 init: greedy paths with few ties
        model.lm_head.weight.mul_(50)
    return model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    """A run directory as the train stage leaves it: ckpt/step-1/ and tokenizer/."""
    root = tmp_path_factory.mktemp("runs") / "tiny-serve"
    step = root / "ckpt" / "step-1"
    save_model(tiny_model(tokenizer.get_vocab_size()), step)
    (step / "state.json").write_text('{"step": 1}')
    (root / "tokenizer").mkdir()
    tokenizer.save(str(root / "tokenizer" / "tokenizer.json"))
    return root


class AllowAll:
    """A policy that allows everything and records the thread each check ran on: for tests
    of the server's machinery, not of the safety policy (tests/serve/test_safety*.py)."""

    log_user_text = False

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.conversations: list[object] = []

    def check(self, text: str, conversation: object = ()) -> object:
        import threading

        from superlab.serve.safety import Verdict

        self.threads.add(threading.current_thread().name)
        self.conversations.append(conversation)
        return Verdict("allow")


def serve_app(served, cfg=None, keys=None, policy=None):
    """An app over the ``served`` tiny model with key ``sk-test-1`` unless told otherwise."""
    from superlab.serve.app import create_app
    from superlab.serve.auth import ApiKey

    return create_app(
        served.model,
        served.tokenizer,
        name=served.name,
        max_seq_len=served.max_seq_len,
        keys=keys or [ApiKey("sk-test-1")],
        cfg=cfg,
        policy=policy if policy is not None else AllowAll(),
    )
