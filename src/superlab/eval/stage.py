"""The ``eval`` stage: score the newest checkpoint and write ``eval.json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from superlab.common import StageContext, StageError, atomic_write_json
from superlab.common.ckpt import latest_checkpoint
from superlab.eval.perplexity import heldout_stream, perplexity
from superlab.model import load_model


def weights_hash(ckpt: Path) -> str:
    """sha256 of the checkpoint's ``model.safetensors``: which weights a result belongs to."""
    h = hashlib.sha256()
    with open(ckpt / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(ctx: StageContext) -> dict[str, Any]:
    """Evaluate the newest checkpoint of the run on its held-out split."""
    ckpt = latest_checkpoint(ctx.run.ckpt)
    if ckpt is None:
        raise StageError(f"no complete checkpoint under {ctx.run.ckpt}; run the train stage first")
    model = load_model(ckpt)
    step = json.loads((ckpt / "state.json").read_text()).get("step")
    cfg = ctx.recipe.eval
    result: dict[str, Any] = {
        "checkpoint": str(ckpt.relative_to(ctx.run.root)),
        "step": step,
        "weights_sha256": weights_hash(ckpt),
        "torch": torch.__version__,
    }
    if cfg.perplexity:
        tokens, text_bytes = heldout_stream(ctx.run.shards)
        seq_len = ctx.recipe.train.seq_len
        with ctx.progress("held-out perplexity", total=None):
            result["heldout"] = perplexity(
                model, tokens, text_bytes, seq_len, batch_size=8, max_batches=cfg.batches
            )
        result["heldout"]["seq_len"] = seq_len
        h = result["heldout"]
        ctx.log.info(
            "held-out loss %.4f, perplexity %.2f, %.3f bits/byte over %d tokens",
            h["loss"],
            h["perplexity"],
            h["bits_per_byte"],
            h["tokens_scored"],
        )
    atomic_write_json(ctx.run.eval, result)
    summary: dict[str, Any] = {"step": step}
    if "heldout" in result:
        summary |= {k: result["heldout"][k] for k in ("loss", "perplexity", "bits_per_byte")}
    return summary
