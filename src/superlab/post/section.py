"""What the ``sft`` and ``pref`` stages share: their recipe section, the model they start
from, where they write, the order of their examples, and ``run``.

A stage is a ``SectionStage`` subclass named as its recipe section; it writes
``<run>/<name>/`` (rejects, eval) and ``ckpt/<name>/`` (checkpoints, tokenizer).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from superlab.common import RunDir, StageContext, StageError
from superlab.config.post import PrefConfig, SFTConfig
from superlab.config.recipe import Recipe, TrainConfig
from superlab.config.rl import RLConfig
from superlab.post.examples import Examples
from superlab.post.start import Start, resolve_start, save_tokenizer, stage_ckpt
from superlab.train.order import Order

C = TypeVar("C", SFTConfig, PrefConfig, RLConfig)


class SectionStage(Generic[C]):
    """A post-training section of the recipe as the trainer's stage (``PostStage``)."""

    name: str  # the recipe section's, and the stage's

    def __init__(self, recipe: Recipe, run: RunDir, log: logging.Logger) -> None:
        cfg: C | None = getattr(recipe, self.name)
        if cfg is None:
            raise StageError(f"the recipe has no {self.name} section")
        self.cfg, self.run, self.log = cfg, run, log
        self.summary: dict[str, Any] = {}
        self.tokenizer: Any = None  # the starting model's, with the chat tokens

    @property
    def tc(self) -> TrainConfig:
        return self.cfg.train

    @property
    def work(self) -> Path:
        """``<run>/<name>/``: the stage's rejects, reference cache and eval."""
        return self.run.root / self.name

    def start(self) -> Start:
        """The model ``<name>.init`` names; refused when ``<name>.train.seq_len`` exceeds its
        context."""
        start = resolve_start(self.cfg.init, self.run, f"{self.name}.init")
        self.tokenizer = start.tokenizer
        seq_len, max_seq_len = self.tc.seq_len, start.model_cfg.max_seq_len
        if seq_len > max_seq_len:
            raise StageError(
                f"{self.name}.train.seq_len ({seq_len}) exceeds the model's max_seq_len "
                f"({max_seq_len}, {start.source})"
            )
        return start

    def keep(self, examples: Examples[Any], rank: int) -> Path:
        """Rank 0 writes the rejected rows and the tokenizer; returns ``ckpt/<name>/``."""
        ckpt = stage_ckpt(self.run, self.name)
        if rank == 0:
            examples.rejects.write(self.work / "rejects.jsonl")
            save_tokenizer(self.tokenizer, ckpt)
        return ckpt

    def order(self, n: int, rank: int, world_size: int, *, heldout: bool = False) -> Order:
        """The order of ``n`` training examples (shuffled per epoch), or of held-out ones."""
        tc = self.tc
        if heldout:
            return Order(n, tc.batch_size, shuffle=False, rank=rank, world_size=world_size)
        return Order(n, tc.batch_size, seed=tc.seed, rank=rank, world_size=world_size)


def run_section(ctx: StageContext, stage_cls: type[SectionStage[Any]]) -> dict[str, Any]:
    """Train ``stage_cls`` on the loop as its recipe section says (resuming from
    ``ckpt/<name>/`` if it can); rank 0 writes ``<run>/<name>/eval.json``."""
    from superlab.train.stage import cpu_threads
    from superlab.train.trainer import Trainer

    cfg = getattr(ctx.recipe, stage_cls.name)
    if cfg is None:
        return {"skipped": f"the recipe has no {stage_cls.name} section"}
    torch.set_num_threads(cpu_threads(cfg.train.threads))
    stage = stage_cls(ctx.recipe, ctx.run, ctx.log)
    trainer = Trainer(ctx.recipe, ctx.run, ctx, post=stage)
    summary = trainer.train()
    if trainer.world.main:
        from superlab.post.evaluate import write_stage_eval

        evaluated = write_stage_eval(
            stage.work / "eval.json",
            summary,
            trainer.model,
            stage.tokenizer,
            trainer.model_cfg.max_seq_len,
            cfg.generate == "arithmetic",
            cfg.train.seed,
        )
        summary["arithmetic"] = evaluated.get("arithmetic")
    return {**summary, **stage.summary}
