"""The decode loop with a real tokenizer and small real models."""

from dataclasses import dataclass

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from superlab.config.recipe import ModelConfig
from superlab.model import Transformer
from superlab.serve.generate import EOS_TOKEN, Generator


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
    c = gen.generate("a b", max_new_tokens=10)
    assert c.token_ids == [2, 3, 4] and c.finish_reason == "eos"
    assert c.text == "a b c"


def test_max_new_tokens_and_stop_strings():
    gen = Generator(Scripted([2, 3, 5, 4], prompt_len=1), word_tokenizer(), max_seq_len=64)
    assert gen.generate("a", max_new_tokens=2).finish_reason == "length"
    c = gen.generate("a", max_new_tokens=10, stop=["stop"])
    assert c.finish_reason == "stop" and c.text == "a b "


def test_context_is_cropped_to_max_seq_len():
    model = Scripted([2] * 10, prompt_len=0)
    Generator(model, word_tokenizer(), max_seq_len=4).generate("a a a", max_new_tokens=5)
    assert max(model.seen) == 4


@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_real_model_is_reproducible_per_seed(temperature):
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, vocab_size=6, max_seq_len=16)
    gen = Generator(Transformer(cfg), word_tokenizer(), max_seq_len=16)
    a = gen.generate("a b", max_new_tokens=12, temperature=temperature, seed=1)
    b = gen.generate("a b", max_new_tokens=12, temperature=temperature, seed=1)
    assert a == b and len(a.token_ids) <= 12
