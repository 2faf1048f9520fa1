"""The model a post-training stage starts from, and its tokenizer with the chat tokens.

``init`` (and ``pref.reference``) name it: ``run`` is this run's newest pre-training
checkpoint (``ckpt/step-N``, tokenizer ``tokenizer/tokenizer.json``); ``sft`` this run's
newest SFT checkpoint (``ckpt/sft/step-N``, tokenizer ``ckpt/sft/tokenizer.json``); any
other value is a path: a local Hugging Face folder (``config.json``, safetensors and
``tokenizer.json``; what ``superlab.model.hf.import_hf`` reads: Llama, Mixtral,
Qwen3-MoE, Llama 4 text) or another superlab run directory (its pre-training checkpoint).

A tokenizer without the chat tokens gets them (``data.chat.ensure_chat_tokens``) and the
model grows to match (``model.vocab.resize_vocab``: new rows at the mean embedding).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from superlab.common import RunDir, StageError
from superlab.common.atomic import atomic_write_text
from superlab.common.ckpt import latest_checkpoint
from superlab.config.recipe import ModelConfig
from superlab.data.chat import ensure_chat_tokens
from superlab.model.io import CONFIG, load_model
from superlab.model.transformer import Transformer
from superlab.model.vocab import resize_vocab

TOKENIZER = "tokenizer.json"


@dataclass
class Start:
    """A starting model: where it is, its config (vocabulary grown), tokenizer and loader."""

    source: str
    model_cfg: ModelConfig
    tokenizer: Tokenizer
    load: Callable[[], Transformer]  # fp32, train mode, vocabulary grown


def stage_ckpt(run: RunDir, stage: str) -> Path:
    """``ckpt/<stage>/``: a post-training stage's step-N checkpoints and its tokenizer."""
    return run.ckpt / stage


def resolve_start(spec: str, run: RunDir, field: str) -> Start:
    """The model ``spec`` names (see the module docstring); ``field`` names it in errors."""
    if spec == "run":
        return _superlab(run.ckpt, run.tokenizer, f"{field} 'run'", "run the train stage first")
    if spec in ("sft", "pref", "rl"):
        where = stage_ckpt(run, spec)
        return _superlab(where, where / TOKENIZER, f"{field} {spec!r}", f"run {spec} first")
    path = Path(spec)
    if (path / "config.json").is_file():
        return _hugging_face(path, field)
    if (path / "ckpt").is_dir():
        other = RunDir(path)
        return _superlab(other.ckpt, other.tokenizer, f"{field} {spec!r}", "train it first")
    raise StageError(
        f"{field}: {spec!r} is not 'run', 'sft', 'pref', 'rl', a Hugging Face folder "
        "(config.json) or a superlab run directory (ckpt/)"
    )


def _superlab(ckpt_root: Path, tok_path: Path, what: str, hint: str) -> Start:
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is None:
        raise StageError(f"{what}: no complete checkpoint in {ckpt_root}; {hint}")
    if not tok_path.is_file():
        raise StageError(f"{what}: no tokenizer at {tok_path}")
    cfg = ModelConfig.model_validate(json.loads((ckpt / CONFIG).read_text()))
    return _grown(str(ckpt), cfg, Tokenizer.from_file(str(tok_path)), lambda: load_model(ckpt))


def _hugging_face(path: Path, field: str) -> Start:
    from superlab.model.hf import config_from_hf, import_hf

    tok_path = path / TOKENIZER
    if not tok_path.is_file():
        raise StageError(f"{field}: {path} has no {TOKENIZER} (a fast tokenizer is needed)")
    try:
        _, cfg = config_from_hf(json.loads((path / "config.json").read_text()))
    except ValueError as e:
        raise StageError(f"{field}: {path}/config.json: {e}") from None
    return _grown(str(path), cfg, Tokenizer.from_file(str(tok_path)), lambda: import_hf(path))


def _grown(source: str, cfg: ModelConfig, tok: Tokenizer, load: Callable[[], Transformer]) -> Start:
    tok = ensure_chat_tokens(tok)
    assert cfg.vocab_size is not None
    vocab = max(cfg.vocab_size, tok.get_vocab_size(with_added_tokens=True))

    def loaded() -> Transformer:
        model = load().float().train()
        resize_vocab(model, vocab)
        return model

    return Start(source, cfg.model_copy(update={"vocab_size": vocab}), tok, loaded)


def vocabulary_difference(a: Tokenizer, b: Tokenizer) -> str | None:
    """Why two tokenizers do not share one vocabulary (None when they do)."""
    va, vb = a.get_vocab(with_added_tokens=True), b.get_vocab(with_added_tokens=True)
    if len(va) != len(vb):
        return f"{len(va)} tokens vs {len(vb)}"
    for token, i in sorted(va.items(), key=lambda kv: kv[1]):
        if vb.get(token) != i:
            return f"token {token!r} is id {i} in one and {vb.get(token)} in the other"
    return None


def save_tokenizer(tok: Tokenizer, ckpt_root: Path) -> None:
    """The stage's tokenizer next to its checkpoints (what serve and the next stage load)."""
    atomic_write_text(ckpt_root / TOKENIZER, tok.to_str())
