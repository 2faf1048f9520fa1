"""One run's checkpoints side by side: base, SFT and preference on the same held-out items.

``superlab compare RUN_DIR`` (one run directory) evaluates every checkpoint the run has,
the newest of each stage, in the same way: the held-out chat loss (assistant tokens only)
on the ``sft`` section's held-out rows, and exact-match pass@1 and pass@k on the same
held-out sums (``post.evaluate.arithmetic_pass``, one seed for all). The base model gets
the chat tokens as every post-training stage does (``post.start``: mean-initialised rows),
so its chat loss says how far pre-training alone is from the chat format. Nothing is
trained or written.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from superlab.common import RunDir, StageError
from superlab.common.ckpt import latest_checkpoint
from superlab.config.recipe import Recipe
from superlab.post.evaluate import arithmetic_pass
from superlab.post.examples import read_examples
from superlab.post.sft import pad_id
from superlab.post.sft_data import IGNORE, encode_row, pack
from superlab.post.start import resolve_start, stage_ckpt

# (label, post.start spec): the stages a run's checkpoints come from, in pipeline order.
CHECKPOINTS = (("base", "run"), ("sft", "sft"), ("pref", "pref"), ("rl", "rl"))


def available(run: RunDir) -> list[tuple[str, str]]:
    """The (label, spec) of every stage that left a complete checkpoint in ``run``."""

    def root(spec: str) -> Path:
        return run.ckpt if spec == "run" else stage_ckpt(run, spec)

    return [(label, spec) for label, spec in CHECKPOINTS if latest_checkpoint(root(spec))]


def chat_rows(recipe: Recipe, workdir: Path) -> list[str] | None:
    """The files of the ``sft`` section's rows (its generated sums written to ``workdir``),
    or None without an ``sft`` section."""
    cfg = recipe.sft
    if cfg is None:
        return None
    files = list(cfg.data)
    if cfg.generate == "arithmetic":
        from superlab.post.arithmetic import write_sft_rows

        files.append(str(write_sft_rows(cfg.generate_rows, cfg.train.seed, workdir)))
    return files


@torch.no_grad()
def heldout_chat_loss(model: torch.nn.Module, tok: Any, recipe: Recipe, files: list[str]) -> float:
    """Mean cross-entropy over the assistant tokens of the ``sft`` section's held-out rows."""
    cfg = recipe.sft
    assert cfg is not None
    seq_len = min(cfg.train.seq_len, model.cfg.max_seq_len)

    def encode(row: dict[str, Any]) -> Any:
        return encode_row(tok, row, cfg.loss_on, seq_len + 1, cfg.truncation)

    held = read_examples(files, encode, cfg.heldout_every).heldout
    if not held:
        raise StageError("sft: no held-out rows (sft.heldout_every is 0 and no row says split)")
    packed = pack(held, seq_len, pad_id(tok), cfg.packing)
    total, count = 0.0, 0
    for lo in range(0, len(packed.x_NT), cfg.train.batch_size):
        rows = slice(lo, lo + cfg.train.batch_size)
        y = torch.from_numpy(packed.y_NT[rows])
        n = int((y != IGNORE).sum())
        if n == 0:
            continue
        out = model(
            torch.from_numpy(packed.x_NT[rows]),
            y,
            doc_ids_BT=torch.from_numpy(packed.doc_NT[rows]) if cfg.packing else None,
        )
        total += float(out.loss) * n
        count += n
    return total / count


def compare_checkpoints(recipe: Recipe, run: RunDir, seed: int | None = None) -> dict[str, Any]:
    """Per checkpoint label: its path, held-out chat loss (with an ``sft`` section) and the
    sums task's pass@1 / pass@k. ``seed`` (default: ``sft.train.seed``, else the recipe's)
    draws the same sampled answers' randomness for every checkpoint."""
    found = available(run)
    if not found:
        raise StageError(f"{run.root}: no complete checkpoint in ckpt/; train it first")
    if seed is None:
        seed = recipe.sft.train.seed if recipe.sft is not None else recipe.seed
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = chat_rows(recipe, Path(tmp))
        for label, spec in found:
            start = resolve_start(spec, run, f"compare {label}")
            model = start.load().eval()
            row: dict[str, Any] = {"checkpoint": start.source}
            if files is not None:
                row["heldout_chat_loss"] = heldout_chat_loss(model, start.tokenizer, recipe, files)
            row["arithmetic"] = arithmetic_pass(
                model, start.tokenizer, start.model_cfg.max_seq_len, seed
            )
            out[label] = row
    return out
