"""The Hugging Face export speaks our chat format: transformers' ids and greedy tokens are ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from typer.testing import CliRunner

from superlab.cli import app
from superlab.config.recipe import ModelConfig
from superlab.data.chat import CHAT_TOKENS, END_OF_TURN, encode_chat, render_chat
from superlab.data.chat.export import export_run, export_tokenizer
from superlab.model import Transformer, load_model, save_model
from superlab.serve.generate import Generator
from superlab.serve.sampling import SamplingParams

from .conftest import CONVERSATIONS
from .test_tokens import old_tokenizer

transformers = pytest.importorskip("transformers", reason="the interop tests compare against it")


def _ids(out: object) -> list[int]:
    """apply_chat_template's ids: a list, or (transformers 5) a BatchEncoding."""
    return list(out["input_ids"]) if hasattr(out, "keys") else list(out)  # type: ignore[index]


@pytest.fixture(scope="module")
def hf_tokenizer(chat_tokenizer: Tokenizer, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("hf-tok")
    export_tokenizer(chat_tokenizer, folder, max_seq_len=64)
    return transformers.AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("gen", [False, True])
def test_apply_chat_template_gives_our_ids(chat_tokenizer, hf_tokenizer, messages, gen) -> None:
    ours = encode_chat(chat_tokenizer, messages, add_generation_prompt=gen).ids
    text = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    assert text == render_chat(messages, add_generation_prompt=gen)
    ids = hf_tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen)
    assert _ids(ids) == ours


def test_exported_tokenizer_config(chat_tokenizer, hf_tokenizer) -> None:
    assert hf_tokenizer.eos_token == "<|endoftext|>" and hf_tokenizer.pad_token == "<|pad|>"
    assert hf_tokenizer.bos_token == "<|endoftext|>" and hf_tokenizer.model_max_length == 64
    assert set(CHAT_TOKENS) <= set(hf_tokenizer.all_special_tokens)
    for t in CHAT_TOKENS:
        assert hf_tokenizer.convert_tokens_to_ids(t) == chat_tokenizer.token_to_id(t)
    text = "Caf\u00e9 \u4e16\u754c \U0001f642 the end"
    assert hf_tokenizer(text)["input_ids"] == chat_tokenizer.encode(text).ids  # no bos added
    ids = chat_tokenizer.encode("<|user|>Hi<|end|>").ids
    assert hf_tokenizer.decode(ids, skip_special_tokens=True) == "Hi"


def run_dir(root: Path, tokenizer: Tokenizer, vocab: int) -> Path:
    """A run directory as training leaves it: ckpt/step-1/ and tokenizer/tokenizer.json."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=vocab, max_seq_len=64,
        tie_embeddings=False,
    )  # fmt: skip
    model = Transformer(cfg)
    with torch.no_grad():  # sharper logits than the 0.02 init: a greedy path with few ties
        model.lm_head.weight.mul_(50)
    step = root / "ckpt" / "step-1"
    save_model(model, step)
    (step / "state.json").write_text('{"step": 1}')
    (root / "tokenizer").mkdir()
    tokenizer.save(str(root / "tokenizer" / "tokenizer.json"))
    return root


def test_greedy_generation_matches_transformers(chat_tokenizer: Tokenizer, tmp_path: Path) -> None:
    root = run_dir(tmp_path / "run", chat_tokenizer, chat_tokenizer.get_vocab_size())
    export_run(root, tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "hf"), dtype=torch.float32
    ).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    messages = CONVERSATIONS[1][:4]
    prompt = hf_tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    prompt_ids = _ids(prompt)
    with torch.no_grad():  # no stop tokens: compare 20 greedy steps
        out = hf.generate(
            torch.tensor([prompt_ids]), max_new_tokens=20, do_sample=False, eos_token_id=None
        )
    theirs = out[0, len(prompt_ids) :].tolist()
    ours = Generator(load_model(root / "ckpt" / "step-1"), chat_tokenizer, 64)
    done = ours.generate(
        render_chat(messages, add_generation_prompt=True), SamplingParams(max_tokens=20)
    )
    assert chat_tokenizer.encode(render_chat(messages, True)).ids == prompt_ids
    if done.finish_reason == "eos":  # our engine stops at <|endoftext|> and leaves it out
        done.token_ids.append(0)
    assert done.token_ids == theirs[: len(done.token_ids)] and len(done.token_ids) >= 5
    generation = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [0, chat_tokenizer.token_to_id(END_OF_TURN)]


def test_a_run_from_before_the_chat_format_is_exported_with_chat_tokens(tmp_path: Path) -> None:
    old = old_tokenizer()
    v = old.get_vocab_size()
    root = run_dir(tmp_path / "run", old, v)
    export_run(root, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["vocab_size"] == v + len(CHAT_TOKENS)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert hf_tok.convert_tokens_to_ids("<|end|>") == v + 4
    msgs = [{"role": "user", "content": "the cat"}]
    ids = _ids(hf_tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True))
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "hf"), dtype=torch.float32
    )
    old_model = load_model(root / "ckpt" / "step-1").eval()
    plain = torch.tensor([old.encode("the cat sat").ids])
    with (
        torch.no_grad()
    ):  # old ids: the grown model's logits over the old vocabulary are the old ones
        grown = hf(plain).logits[..., :v]
        torch.testing.assert_close(grown, old_model(plain).logits_BTV, rtol=1e-5, atol=1e-5)
        assert hf(torch.tensor([ids])).logits.shape[-1] == v + 5


def test_export_cli(chat_tokenizer: Tokenizer, tmp_path: Path) -> None:
    root = run_dir(tmp_path / "run", chat_tokenizer, chat_tokenizer.get_vocab_size())
    res = CliRunner().invoke(app, ["export", str(root / "ckpt"), str(tmp_path / "hf")])
    assert res.exit_code == 0, res.output
    names = {p.name for p in (tmp_path / "hf").iterdir()}
    assert names == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    }
    res = CliRunner().invoke(app, ["export", str(tmp_path / "nope"), str(tmp_path / "hf2")])
    assert res.exit_code == 1 and "error:" in res.output
    res = CliRunner().invoke(app, ["export", str(root), str(tmp_path / "hf3"), "--arch", "gpt2"])
    assert res.exit_code == 1 and "arch 'gpt2'" in res.output
