"""The ``serve`` stage of a run: answer the recipe's sample prompts, write ``samples.json``."""

from __future__ import annotations

from typing import Any

from tokenizers import Tokenizer

from superlab.common import StageContext, StageError, atomic_write_json
from superlab.common.ckpt import latest_checkpoint
from superlab.model import load_model
from superlab.serve.generate import Generator
from superlab.serve.sampling import SamplingParams


def run(ctx: StageContext) -> dict[str, Any]:
    """Generate a completion for each of ``serve.prompts`` with the newest checkpoint.

    An image-task run (``data.images``) has no tokenizer (its questions are in the task's own
    vocabulary) and no text prompts to answer: the stage is skipped, saying why."""
    if ctx.recipe.data.images is not None:
        return {"skipped": "an image-task run (data.images) has no tokenizer or text prompts"}
    ckpt = latest_checkpoint(ctx.run.ckpt)
    if ckpt is None:
        raise StageError(f"no complete checkpoint under {ctx.run.ckpt}; run the train stage first")
    if not ctx.run.tokenizer.is_file():
        raise StageError(f"{ctx.run.tokenizer} is missing; run the data stage first")
    model = load_model(ckpt)
    gen = Generator(
        model, Tokenizer.from_file(str(ctx.run.tokenizer)), ctx.recipe.model.max_seq_len
    )
    cfg = ctx.recipe.serve
    samples = []
    with ctx.progress("sample prompts", total=len(cfg.prompts)) as bar:
        for i, prompt in enumerate(cfg.prompts):
            params = SamplingParams(
                max_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_k=cfg.top_k,
                top_p=cfg.top_p,
                seed=cfg.seed + i,
            )
            c = gen.generate(prompt, params)
            samples.append(
                {"prompt": prompt, "completion": c.text, "finish_reason": c.finish_reason}
            )
            ctx.log.info("sample: %r -> %r", prompt, c.text[:80])
            bar.advance()
    atomic_write_json(ctx.run.samples, samples)
    return {"prompts": len(samples), "checkpoint": ckpt.name}
