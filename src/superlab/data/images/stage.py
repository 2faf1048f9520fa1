"""The data stage of an image-task run (``data.images``): build the train and held-out splits.

Each split is generated from its own seed (``data.images.train_seed`` / ``heldout_seed``)
and written to ``data/images/`` by ``shards.build_split``: source, pixels, question rows,
token ids, rejects, and the ``<split>.done`` marker last. A split whose marker holds the
same settings is kept on a rerun; an unfinished one is redone. ``data/stats.json`` gets
both splits' stats. The text pipeline (clean, dedup, tokenizer, pack) does not run: the
task's text is its questions, in its own character vocabulary (``text``), which the
recipe's ``model.vision`` image token ids must match.
"""

from __future__ import annotations

from typing import Any

from superlab.common import StageContext, StageError, atomic_write_json
from superlab.data.images import shards, text

SPLITS = ("train", "heldout")


def check_ids(ctx: StageContext) -> int:
    """``tokens_per_image`` of the recipe's model; StageError if it cannot read the task."""
    model, v = ctx.recipe.model, ctx.recipe.model.vision
    if v is None:
        raise StageError("data.images needs a model with model.vision (the image tower)")
    want = {
        "image_token_id": text.IMAGE,
        "image_start_id": text.IMAGE_START,
        "image_end_id": text.IMAGE_END,
    }
    for field, tid in want.items():
        if getattr(v, field) != tid:
            raise StageError(
                f"model.vision.{field} is {getattr(v, field)}; the image task uses {tid}"
            )
    if model.vocab_size is not None and model.vocab_size < text.VOCAB:
        raise StageError(
            f"model.vocab_size ({model.vocab_size}) is smaller than the image task's"
            f" vocabulary ({text.VOCAB})"
        )
    return v.tokens_per_image


def run(ctx: StageContext) -> dict[str, Any]:
    """Build (or keep) both splits; write ``data/stats.json``; return their stats."""
    cfg = ctx.recipe.data.images
    assert cfg is not None and ctx.recipe.model.vision is not None
    per_image = check_ids(ctx)
    side = ctx.recipe.model.vision.image_size
    sizes = {
        "train": (cfg.train_images, cfg.train_seed),
        "heldout": (cfg.heldout_images, cfg.heldout_seed),
    }
    stats = {}
    for split in SPLITS:
        n, seed = sizes[split]
        kept = shards.is_done(ctx.run.data, split, shards.settings(n, seed, side, per_image))
        stats[split] = shards.build_split(ctx.run.data, split, n, seed, side, per_image)
        ctx.log.info(
            "data: image split %s %s: %d images, %d questions, %d rejected (seed %d)",
            split,
            "kept" if kept else "built",
            stats[split]["images"],
            stats[split]["questions"],
            stats[split]["rejected"],
            seed,
        )
    atomic_write_json(ctx.run.data_stats, {"images": stats})
    return {
        f"{split}_{k}": s[k]
        for split, s in stats.items()
        for k in ("images", "questions", "rejected")
    }
