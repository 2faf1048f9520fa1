"""The ``plan`` stage: what this run cost, and what the same model would cost at scale.

Writes ``plan.json`` with the inputs (model counts, vocabulary, hardware
assumptions) and two estimates: ``this_run`` (the recipe's own training tokens)
and ``at_scale`` (``plan.target_tokens``, or 20 tokens per parameter).
"""

from __future__ import annotations

import json
from typing import Any

from superlab.common import StageContext, StageError, atomic_write_json
from superlab.config import PlanConfig
from superlab.plan.catalog import (
    CLUSTER_OVERHEAD,
    SERVER_OVERHEAD,
    Accelerator,
    get_accelerator,
)
from superlab.plan.estimate import TrainingEstimate, estimate_training

# Compute-optimal training uses about 20 tokens per parameter
# (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", table 3).
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def resolve_vocab_size(ctx: StageContext) -> tuple[int, str]:
    """The model's vocabulary size and where it came from (recipe, shard index, tokenizer)."""
    if ctx.recipe.model.vocab_size is not None:
        return ctx.recipe.model.vocab_size, "model.vocab_size"
    index = ctx.run.shards / "index.json"
    if index.is_file():
        try:
            vocab = json.loads(index.read_text("utf-8")).get("vocab_size")
        except (OSError, ValueError, AttributeError) as e:
            ctx.log.warning("plan: cannot read %s (%s); using tokenizer.vocab_size", index, e)
        else:
            if isinstance(vocab, int) and vocab > 0:
                return vocab, "data/shards/index.json"
    return ctx.recipe.tokenizer.vocab_size, "tokenizer.vocab_size"


def _estimate(
    plan: PlanConfig, accelerator: Accelerator, n_matmul: float, attn: float, tokens: float
) -> TrainingEstimate:
    """One estimate with the recipe's hardware assumptions: every ``plan`` field but the
    accelerator's name (``accelerator`` is the entry) and ``target_tokens`` is an
    ``estimate_training`` input of the same name."""
    assumptions = plan.model_dump(exclude={"accelerator", "target_tokens"})
    return estimate_training(n_matmul, tokens, attn, accelerator, **assumptions)


def _vision(model: Any) -> dict[str, Any] | None:
    """The vision tower's parameters and FLOPs per image (None: a text-only model).

    The estimates above count text tokens (an image's placeholders among them): the tower's
    compute is per image, so it is reported here for the reader to multiply by images seen.
    """
    from superlab.model import counts

    if model.vision is None:
        return None
    return {
        "params": counts.vision_params(model.vision, model.d_model),
        "tokens_per_image": model.vision.tokens_per_image,
        "flops_per_image": counts.vision_flops_per_image(model.vision, model.d_model),
        "note": "not in this_run/at_scale: they count text tokens; the tower runs per image",
    }


def run(ctx: StageContext) -> dict[str, Any]:
    """Estimate this run and the scaled-up run, write ``plan.json``, return a summary."""
    from superlab.model import counts  # no torch; imported here so `plan` loads without it

    recipe, plan = ctx.recipe, ctx.recipe.plan
    vocab_size, vocab_source = resolve_vocab_size(ctx)
    seq_len = recipe.train.seq_len
    model = recipe.model.model_copy(update={"vocab_size": vocab_size})
    params = counts.param_count(model)
    flops = counts.flops_per_token(model, seq_len)
    # 6N counts the active matmul weights a token passes through (LM head in, embedding
    # lookup and norm gains out); attention scores/values are added per token.
    n_matmul, attn = float(flops["params_matmul"]), float(flops["attention"])

    train = recipe.train
    run_tokens = float(train.steps * train.batch_size * train.grad_accum * seq_len)
    if plan.target_tokens is not None:
        scale_tokens, scale_source = plan.target_tokens, "plan.target_tokens"
    else:
        scale_tokens = CHINCHILLA_TOKENS_PER_PARAM * float(params["total"])
        scale_source = "20 x total parameters (Chinchilla, Hoffmann et al. 2022)"

    try:
        accelerator = get_accelerator(plan.accelerator)
        this_run = _estimate(plan, accelerator, n_matmul, attn, run_tokens)
        at_scale = _estimate(plan, accelerator, n_matmul, attn, scale_tokens)
    except ValueError as e:  # unknown accelerator, unsupported precision, bad counts
        raise StageError(f"plan: {e}") from e

    atomic_write_json(
        ctx.run.plan,
        {
            "inputs": {
                "plan": plan.model_dump(mode="json"),
                "accelerator": accelerator.model_dump(mode="json"),
                "overheads": {"server": SERVER_OVERHEAD, "cluster": CLUSTER_OVERHEAD},
                "vocab_size": vocab_size,
                "vocab_source": vocab_source,
                "seq_len": seq_len,
                "params": dict(params),
                "flops_per_token": dict(flops),
                "vision": _vision(model),
            },
            "this_run": {
                "tokens_source": "train.steps x batch_size x grad_accum x seq_len",
                **this_run.model_dump(mode="json"),
            },
            "at_scale": {"tokens_source": scale_source, **at_scale.model_dump(mode="json")},
        },
    )
    ctx.log.info(
        "plan: %s x %d, at scale %.3g tokens -> %.3g GPU-hours, %.3g days, $%.3g",
        accelerator.name,
        plan.num_gpus,
        scale_tokens,
        at_scale.gpu_hours,
        at_scale.wall_clock_days,
        at_scale.cost_usd,
    )
    return {
        "accelerator": f"{accelerator.name} x {plan.num_gpus} ({plan.precision})",
        "params_total": params["total"],
        "params_active": params["active"],
        "run_gpu_hours": this_run.gpu_hours,
        "scale_tokens": scale_tokens,
        "scale_gpu_hours": at_scale.gpu_hours,
        "scale_days": at_scale.wall_clock_days,
        "scale_cost_usd": at_scale.cost_usd,
    }
