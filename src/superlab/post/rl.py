"""The ``rl`` stage: GRPO with verifiable rewards, on the pre-training loop.

The stage builds a ``Job`` whose loader is a ``RolloutLoader`` (``rollout``: prompts in a
resumable order, G completions each through the serve engine, rewards, group advantages)
and whose objective is ``GRPOLoss`` (``grpo``: clipped ratio, k3 KL, seq- or token-mean).
The trainer owns the rest: AdamW, schedule, clipping, checkpoints in ``ckpt/rl/step-N``,
exact resume and ``metrics.jsonl`` (rows with ``"stage": "rl"``).

The reference model (``beta > 0``) is the starting model or ``rl.reference``, loaded again
on resume; ``<run>/rl/reference.json`` records its source, and a resumed stage whose
reference now resolves to another checkpoint is refused. A reward that raises, or returns
NaN or the wrong number of values, stops the stage after a checkpoint of the last
completed step; ``run.log`` names the prompt id and holds the traceback.

At the end, ``<run>/rl/eval.json`` holds held-out pass@1 (greedy) and pass@k (sampled) of
the starting (SFT) model and of the RL model (``rl_eval``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from superlab.common import RunDir, StageContext, StageError
from superlab.common.atomic import atomic_write_json
from superlab.common.ckpt import latest_checkpoint
from superlab.config.recipe import Recipe
from superlab.config.rl import RLConfig
from superlab.post.grpo import GRPOLoss
from superlab.post.rewards import RewardError, build_rewards
from superlab.post.rl_data import Prompts, read_prompts
from superlab.post.rollout import RolloutLoader
from superlab.post.section import SectionStage
from superlab.post.sft import pad_id
from superlab.post.start import (
    Start,
    resolve_start,
    save_tokenizer,
    stage_ckpt,
    vocabulary_difference,
)
from superlab.train.objective import Job
from superlab.train.order import Order

if TYPE_CHECKING:
    from superlab.train.trainer import Trainer


class RLStage(SectionStage[RLConfig]):
    """The ``rl`` section as the trainer's post-training stage (``PostStage``)."""

    name = "rl"

    def __init__(self, recipe: Recipe, run: RunDir, log: logging.Logger) -> None:
        super().__init__(recipe, run, log)
        self.started: Start | None = None
        self.reference: Start | None = None
        self.prompts = Prompts()
        self.loader: RolloutLoader | None = None

    def build(self, rank: int, world_size: int, device: torch.device) -> Job:
        cfg, tc = self.cfg, self.cfg.train
        start = resolve_start(cfg.init, self.run, "rl.init")
        self.started, self.tokenizer = start, start.tokenizer
        max_seq_len = start.model_cfg.max_seq_len
        rewards = build_rewards(cfg.rewards, cfg.answer_field, cfg.answer_tag)
        self.prompts = read_prompts(cfg, start.tokenizer, max_seq_len)
        ckpt = stage_ckpt(self.run, self.name)
        if cfg.beta > 0:
            self.reference = self._reference(start, ckpt, rank == 0)
        if rank == 0:
            self.prompts.rejects.write(self.work / "rejects.jsonl")
            save_tokenizer(start.tokenizer, ckpt)
        order = Order(
            len(self.prompts.train), tc.batch_size, seed=tc.seed, rank=rank, world_size=world_size
        )
        self.loader = RolloutLoader(
            cfg,
            self.prompts.train,
            order,
            start.tokenizer,
            rewards,
            self.work,
            ckpt,
            rank,
            pad_id(start.tokenizer),
        )
        self.summary = {
            "init": start.source,
            "reference": None if self.reference is None else self.reference.source,
            "group_size": cfg.group_size,
            **self.prompts.summary(),
        }
        self.log.info(
            "rl: from %s; %d prompts x %d completions per step, %d held out",
            start.source,
            tc.batch_size,
            cfg.group_size,
            len(self.prompts.heldout),
        )
        return Job(
            self.name,
            ckpt,
            start.model_cfg,
            self.loader,
            None,
            GRPOLoss(cfg, self.loader.stat_names),
            start.load,
        )

    def _reference(self, policy: Start, ckpt: Path, main: bool) -> Start:
        """The reference model: the same on every resume of this stage, or refused."""
        ref = (
            policy
            if self.cfg.reference is None
            else resolve_start(self.cfg.reference, self.run, "rl.reference")
        )
        why = vocabulary_difference(policy.tokenizer, ref.tokenizer)
        if why is not None:
            raise StageError(
                f"rl.reference {ref.source} does not share the policy's vocabulary "
                f"({policy.source}): {why}"
            )
        record = self.work / "reference.json"
        if record.is_file() and latest_checkpoint(ckpt) is not None:
            was = json.loads(record.read_text())["source"]
            if was != ref.source:
                raise StageError(
                    f"rl: the checkpoints in {ckpt} were trained against the reference {was}, "
                    f"which now resolves to {ref.source}; restore it or remove {ckpt}"
                )
        elif main:
            atomic_write_json(record, {"source": ref.source})
        return ref


def build_trainer(ctx: StageContext) -> tuple[RLStage, Trainer]:
    """The stage and its trainer, the loader bound to the policy and the reference."""
    from superlab.train.trainer import Trainer

    stage = RLStage(ctx.recipe, ctx.run, ctx.log)
    trainer = Trainer(ctx.recipe, ctx.run, ctx, post=stage)
    assert stage.loader is not None
    reference = None
    if stage.reference is not None:
        reference = stage.reference.load().to(trainer.device).eval()
    stage.loader.bind(
        trainer.model, reference, trainer.device, trainer.bf16, trainer.model_cfg.max_seq_len
    )
    return stage, trainer


def run(ctx: StageContext) -> dict[str, Any]:
    """GRPO as the recipe's ``rl`` section says; resume from ``ckpt/rl/`` if it can."""
    from superlab.train.stage import cpu_threads

    cfg: RLConfig | None = getattr(ctx.recipe, "rl", None)
    if cfg is None:
        return {"skipped": "the recipe has no rl section"}
    torch.set_num_threads(cpu_threads(cfg.train.threads))
    stage, trainer = build_trainer(ctx)
    try:
        summary = trainer.train()
    except RewardError as e:
        trainer.save()  # the last completed step; the rollout that failed is redone on resume
        ctx.log.error(
            "rl: %s; checkpoint saved at step %d\n%s", e, trainer.step, e.traceback_text or ""
        )
        raise StageError(
            f"{e}; checkpoint saved at {stage_ckpt(ctx.run, 'rl')}/step-{trainer.step} "
            "(see run.log for the traceback)"
        ) from None
    summary = {**summary, **stage.summary}
    if trainer.world.main:
        summary["eval"] = write_rl_eval(ctx, stage, trainer.model, summary["steps"])
    return summary


def write_rl_eval(
    ctx: StageContext, stage: RLStage, model: torch.nn.Module, step: int
) -> dict[str, Any]:
    """``<run>/rl/eval.json``: held-out pass@1 and pass@k, SFT (start) vs RL."""
    from superlab.post.rl_eval import pass_rates

    cfg, start = stage.cfg, stage.started
    assert start is not None
    items = stage.prompts.heldout[: cfg.eval_items]
    out: dict[str, Any] = {"step": step, "items": len(items)}
    if not items:
        out["skipped"] = "no held-out prompts (rl.task, or rl.heldout_every with rl.data)"
    else:
        max_seq_len = start.model_cfg.max_seq_len
        seed = cfg.train.seed + 7
        device = next(model.parameters()).device
        before = start.load().to(device)
        out["start"] = {
            "source": start.source,
            **pass_rates(before, stage.tokenizer, max_seq_len, items, cfg, seed),
        }
        del before
        out["rl"] = pass_rates(model, stage.tokenizer, max_seq_len, items, cfg, seed)
        out["pass@1_gain"] = out["rl"]["pass@1"] - out["start"]["pass@1"]
        k = f"pass@{cfg.eval_samples}"
        out[f"{k}_gain"] = out["rl"][k] - out["start"][k]
    atomic_write_json(stage.work / "eval.json", out)
    ctx.log.info("rl: eval %s", json.dumps(out))
    return out
