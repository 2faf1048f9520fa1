"""The decode loop with a real tokenizer and small real models."""

from dataclasses import dataclass

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from superlab.config.recipe import AttentionConfig, ModelConfig
from superlab.model import Transformer
from superlab.serve.generate import EOS_TOKEN, Generator
from superlab.serve.sampling import SamplingParams


def word_tokenizer() -> Tokenizer:
    vocab = {EOS_TOKEN: 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4, "stop": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


@dataclass
class Out:
    logits_BTV: torch.Tensor


class Scripted(torch.nn.Module):
    """Emits ``script[i]`` at the i-th generated position (by context length), then EOS."""

    def __init__(self, script: list[int], prompt_len: int, vocab: int = 6) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.script, self.prompt_len, self.vocab = script, prompt_len, vocab
        self.seen: list[int] = []

    def forward(self, idx_BT: torch.Tensor) -> Out:
        T = idx_BT.shape[1]
        self.seen.append(T)
        i = T - self.prompt_len
        token = self.script[i] if i < len(self.script) else 0
        logits = torch.full((1, T, self.vocab), -10.0)
        logits[0, -1, token] = 10.0
        return Out(logits)


def test_stops_at_eos_and_decodes():
    gen = Generator(Scripted([2, 3, 4], prompt_len=2), word_tokenizer(), max_seq_len=64)
    c = gen.generate("a b", SamplingParams(max_tokens=10))
    assert c.token_ids == [2, 3, 4] and c.finish_reason == "eos"
    assert c.text == "a b c"


def test_max_new_tokens_and_stop_strings():
    gen = Generator(Scripted([2, 3, 5, 4], prompt_len=1), word_tokenizer(), max_seq_len=64)
    assert gen.generate("a", SamplingParams(max_tokens=2)).finish_reason == "length"
    c = gen.generate("a", SamplingParams(max_tokens=10, stop=("stop",)))
    assert c.finish_reason == "stop" and c.text == "a b "


def test_context_is_cropped_to_max_seq_len():
    model = Scripted([2] * 10, prompt_len=0)
    Generator(model, word_tokenizer(), max_seq_len=4).generate(
        "a a a", SamplingParams(max_tokens=5)
    )
    assert max(model.seen) == 4


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_real_model_is_reproducible_per_seed(temperature):
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=6, max_seq_len=16)
    gen = Generator(Transformer(cfg), word_tokenizer(), max_seq_len=16)
    a = gen.generate("a b", SamplingParams(max_tokens=12, temperature=temperature, seed=1))
    b = gen.generate("a b", SamplingParams(max_tokens=12, temperature=temperature, seed=1))
    assert a == b and len(a.token_ids) <= 12


class Uncached(torch.nn.Module):
    """The same model seen through a forward without a cache: the re-running fallback."""

    def __init__(self, model: Transformer) -> None:
        super().__init__()
        self.inner = model

    def forward(self, idx_BT: torch.Tensor):
        return self.inner(idx_BT)


@pytest.mark.parametrize(
    "attention",
    [
        AttentionConfig(kind="full"),
        # receptive field n_layers * (window - 1) = 4 < max_seq_len: cropping loses nothing
        AttentionConfig(kind="sliding", window=3),
    ],
    ids=lambda a: a.kind,
)
def test_cached_generation_equals_rerunning_the_context(attention):
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=6,
        max_seq_len=8,
        attention=attention,
    )
    model = Transformer(cfg)
    cached = Generator(model, word_tokenizer(), max_seq_len=8)
    rerun = Generator(Uncached(model), word_tokenizer(), max_seq_len=8)
    assert cached.cached and not rerun.cached
    for prompt in ["a b", "a b c a b c a b c"]:  # the second is longer than max_seq_len
        for temperature in (0.0, 0.8):
            a = cached.generate(
                prompt, SamplingParams(max_tokens=20, temperature=temperature, seed=3)
            )
            b = rerun.generate(
                prompt, SamplingParams(max_tokens=20, temperature=temperature, seed=3)
            )
            assert a == b


def test_chunked_decoding_keeps_a_bounded_cache_past_max_seq_len():
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        vocab_size=6,
        max_seq_len=8,
        attention=AttentionConfig(kind="chunked", chunk_size=4),
    )
    calls: list[int] = []
    model = Transformer(cfg)
    model.register_forward_pre_hook(
        lambda _m, args, kw: calls.append(args[0].shape[1]), with_kwargs=True
    )
    c = Generator(model, word_tokenizer(), max_seq_len=8).generate(
        "a b", SamplingParams(max_tokens=30)
    )
    assert calls[0] == 2 and set(calls[1:]) <= {1}  # prefill once, then one token per step
    assert len(c.token_ids) == len(calls) > 8  # ran past max_seq_len (no EOS here)


def test_a_pattern_with_a_full_layer_is_not_a_bounded_cache():
    from superlab.config.recipe import AttentionConfig

    cfg = ModelConfig(
        d_model=32,
        n_layers=2,
        n_heads=4,
        vocab_size=6,
        max_seq_len=16,
        attention=AttentionConfig(kind="chunked", chunk_size=4),
        layer_pattern=[{"attention": "chunked"}, {"attention": "full", "rope": False}],
    )
    assert not Generator(Transformer(cfg), word_tokenizer(), max_seq_len=16).bounded
    chunked_only = cfg.model_copy(update={"layer_pattern": None})
    assert Generator(Transformer(chunked_only), word_tokenizer(), max_seq_len=16).bounded
