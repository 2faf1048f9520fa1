"""The training loop: AdamW, schedules, clipping, accumulation, checkpoints, metrics.

Weight decay (AdamW, Loshchilov & Hutter 2019) applies to the matrices of the
attention, MLP, expert and router projections; not to norm gains or the (possibly
tied) embedding, as in nanoGPT / Llama practice: decaying them only shrinks the
scale the norms and the softmax re-learn. The model has no biases.

Precision (``train.precision``): bf16 autocast around the forward pass, weights, gradients
and AdamW state in fp32. Compile and data parallelism wrap the model from outside
(``superlab.train.parallel``); the same loop runs on one CPU and under ``torchrun``.

A step whose loss or gradient norm is not finite is skipped (no optimizer update;
the data and the schedule move on), counted, and logged with ``"skipped": true``;
``train.max_bad_steps`` in a row raise ``NonFiniteLossError`` naming the steps. SIGTERM
or SIGINT (Ctrl-C) stops the loop at the next step boundary (all ranks agree on which),
saves a checkpoint and raises ``TrainingInterrupted`` (a ``KeyboardInterrupt``); a second
Ctrl-C stops at once without saving, while a repeated SIGTERM is ignored (a supervisor that
sends it twice, such as a process pool stopping its workers, must not cost the checkpoint;
SIGKILL is the way to force).

Legend: B batch (this rank's rows), T sequence.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from superlab.common import RunDir, StageContext, StageError
from superlab.common.ckpt import latest_checkpoint
from superlab.config.recipe import ModelConfig, Recipe, TrainConfig
from superlab.model.counts import param_count
from superlab.model.io import CONFIG
from superlab.model.moe import MoE
from superlab.model.transformer import Transformer
from superlab.train import expert_parallel, moe_stats, parallel
from superlab.train.checkpoint import load_checkpoint, remove_partial, save_checkpoint
from superlab.train.loader import Mixture, MixtureLoader, TokenLoader, read_index
from superlab.train.metrics import MetricsLog, truncate_after
from superlab.train.mfu import mfu, peak_tflops, train_flops_per_token
from superlab.train.objective import NextToken, PostStage, StepOut
from superlab.train.schedule import lr_for


class NonFiniteLossError(StageError):
    """Too many consecutive steps with a NaN/inf loss or gradient."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by a signal after saving a checkpoint."""


def resolve_device(name: str, world: parallel.World | None = None) -> torch.device:
    """``auto`` = CUDA when available, else CPU; under torchrun CUDA is ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise StageError("train.device is 'cuda' but torch sees no CUDA device")
    if name == "cuda" and world is not None and world.size > 1:
        return torch.device("cuda", world.local_rank)
    return torch.device(name)


def resolve_bf16(precision: str, device: torch.device) -> bool:
    """Whether to autocast to bf16: ``auto`` = on a CUDA device with bf16 support."""
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return cuda_bf16
    if precision == "bf16" and device.type == "cuda" and not cuda_bf16:
        raise StageError(
            f"train.precision is 'bf16' but {torch.cuda.get_device_name(device)} has no bf16; "
            f"use 'fp32' or 'auto'"
        )
    return precision == "bf16"


def resolve_model_config(recipe: Recipe, shards_dir: Any) -> ModelConfig:
    """``recipe.model`` with ``vocab_size`` taken from the shards' index when it is None."""
    vocab = int(read_index(shards_dir)["vocab_size"])
    cfg = recipe.model
    if cfg.vocab_size is None:
        return cfg.model_copy(update={"vocab_size": vocab})
    if cfg.vocab_size < vocab:
        raise StageError(f"model.vocab_size ({cfg.vocab_size}) < the shards' vocab_size ({vocab})")
    return cfg


def build_optimizer(model: Transformer, tc: TrainConfig) -> torch.optim.AdamW:
    """AdamW with decay on projection matrices only (see the module docstring)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or name.startswith("tok_emb.") else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": tc.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2))


class Trainer:
    """Trains ``recipe.model`` on ``run_dir``'s shards, resuming from its newest checkpoint.

    With ``post`` (a post-training stage, ``superlab.train.objective``) the same loop trains
    that stage's ``Job`` instead: its loader, objective, settings and checkpoint directory.
    """

    def __init__(
        self,
        recipe: Recipe,
        run_dir: RunDir,
        ctx: StageContext | None = None,
        post: PostStage | None = None,
    ) -> None:
        self.recipe, self.run = recipe, run_dir
        self.ctx = ctx if ctx is not None else StageContext(recipe=recipe, run=run_dir)
        self.log = self.ctx.log
        self.tc = tc = recipe.train if post is None else post.tc
        self.world = parallel.init_world(resolve_device(tc.device).type)
        self.device = resolve_device(tc.device, self.world)
        self.bf16 = resolve_bf16(tc.precision, self.device)
        job = None if post is None else post.build(self.world.rank, self.world.size, self.device)
        self.stage = "train" if job is None else job.name
        self.ckpt_dir = run_dir.ckpt if job is None else job.ckpt
        self.objective = NextToken() if job is None else job.objective
        self._tag = {} if job is None else {"stage": job.name}  # on its metrics rows
        self.model_cfg = (
            resolve_model_config(recipe, run_dir.shards) if job is None else job.model_cfg
        )
        torch.manual_seed(tc.seed)
        if job is not None and job.init is not None and latest_checkpoint(job.ckpt) is None:
            self.model = job.init().to(self.device)  # post-training starts from a model
        else:
            self.model = Transformer(self.model_cfg).to(self.device)
        if tc.compile:
            parallel.compile_blocks(self.model)
        self.experts = expert_parallel.setup(
            self.model, self.model_cfg, tc.expert_parallel, self.world
        )
        self.train_model = parallel.parallelize(self.model, tc.distributed, self.world)
        self.optimizer = build_optimizer(self.model, tc)
        rank, size = self.world.rank, self.world.size
        if job is None:
            self._shard_loaders(run_dir, tc, rank, size)
        else:
            self.loader: Any = job.loader
            self.heldout: Any = job.heldout
        self.moe_layers = [
            i for i in range(self.model_cfg.n_layers) if self.model_cfg.is_moe_layer(i)
        ]
        self.flops_per_token = train_flops_per_token(self.model_cfg, tc.seq_len)
        self.peak, peak_source = peak_tflops(tc, self.device, self.bf16)
        if self.world.main and self.peak is None:
            self.log.info("MFU not logged: %s", peak_source)
        elif self.world.main:
            self.log.info("MFU against %g TFLOP/s per device (%s)", self.peak, peak_source)
        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        self.skipped = 0
        self.last_loss: float | None = None
        self.last_heldout: float | None = None
        self._bad_steps = 0
        self._saved_step = -1
        self._stop_signal = 0
        self._stop_agreed = False
        self._window_tokens, self._window_time = 0, 0.0
        self._last_tokens_per_s = 0.0
        self._resume()
        tb_dir = run_dir.root / "tb" if tc.tensorboard and self.world.main else None
        self.metrics: MetricsLog | None = None
        if self.world.main:
            self.metrics = MetricsLog(run_dir.metrics, tb_dir, self.step, self.log)

    def _shard_loaders(self, run_dir: RunDir, tc: TrainConfig, rank: int, size: int) -> None:
        """Pre-training's batches: the train windows (or mixture) and the held-out windows."""
        shards, shape = run_dir.shards, (tc.batch_size, tc.seq_len)
        kw: dict[str, Any] = {"documents": tc.document_mask, "rank": rank, "world_size": size}
        try:
            mixture = Mixture.from_config(self.recipe.data, tc)  # data.sources: by weight
            if mixture is None:
                self.loader = TokenLoader(shards, "train", *shape, seed=tc.seed, **kw)
            else:
                self.loader = MixtureLoader(shards, mixture, *shape, seed=tc.seed, **kw)
        except ValueError as e:
            raise StageError(str(e)) from None
        self.heldout = None
        try:
            self.heldout = TokenLoader(shards, "heldout", *shape, shuffle=False, **kw)
        except ValueError as e:
            self.log.warning("no held-out loss: %s", e)

    # ------------------------------------------------------------------ resume / save

    def _resume(self) -> None:
        if self.world.main:
            remove_partial(self.ckpt_dir)
        path = latest_checkpoint(self.ckpt_dir)
        if path is not None:
            saved_cfg = json.loads((path / CONFIG).read_text())
            if saved_cfg != self.model_cfg.model_dump(mode="json"):
                raise StageError(
                    f"{path} was trained with a different model config than the recipe's; "
                    f"restore the recipe's model section or remove {self.ckpt_dir}"
                )
            model_sd, optim_sd, state = load_checkpoint(path)
            if self.experts is not None:
                self.experts.shard_state(model_sd, optim_sd)
            parallel.load_full_state(self.model, self.optimizer, model_sd, optim_sd)
            self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
            self.last_loss, self.last_heldout = state["loss"], state["heldout_loss"]
            self.skipped, self._bad_steps = state.get("skipped", 0), state.get("bad_steps", 0)
            self.loader.load_state(state["loader"])
            self._saved_step = self.step
            self.log.info("resumed from %s (step %d)", path, self.step)
        if self.world.main:
            dropped = truncate_after(self.run.metrics, self.step, self.stage)
            if dropped:
                self.log.info("dropped %d metrics rows after step %d", dropped, self.step)

    def save(self) -> None:
        """Checkpoint the current step (once per step); every rank calls it, rank 0 writes."""
        if self._saved_step == self.step:
            return
        model_sd, optim_sd = parallel.full_state(self.model, self.optimizer)
        if self.experts is not None:
            self.experts.consolidate(model_sd, optim_sd, self.optimizer)
        if self.world.main:
            extra = {
                "loader": self.loader.state(),
                "tokens": self.tokens,
                "elapsed": self.elapsed,
                "loss": self.last_loss,
                "heldout_loss": self.last_heldout,
                "skipped": self.skipped,
                "bad_steps": self._bad_steps,
                "world_size": self.world.size,
            }
            save_checkpoint(
                self.ckpt_dir,
                self.step,
                model_sd,
                self.model_cfg,
                optim_sd,
                extra,
                self.tc.keep_last,
            )
        self._saved_step = self.step

    # ------------------------------------------------------------------ the loop

    def train(self) -> dict[str, Any]:
        """Train until ``train.steps``; return the stage summary."""
        tc = self.tc
        try:
            with self._signals(), self.ctx.progress(self.stage, total=tc.steps) as bar:
                bar.advance(self.step)
                while self.step < tc.steps:
                    if self._should_stop():
                        self.save()
                        name = signal.Signals(self._stop_signal or signal.SIGTERM).name
                        raise TrainingInterrupted(f"{name} at step {self.step}; checkpoint saved")
                    self._train_step()
                    bar.advance(1)
                    if self.last_loss is not None:
                        bar.update(description=self._bar_text())
                    if self.step % tc.eval_every == 0 or self.step == tc.steps:
                        self._eval_heldout()
                    if self.step % tc.ckpt_every == 0 or self.step == tc.steps:
                        self.save()
        finally:
            if self.metrics is not None:
                self.metrics.close()
        counts = param_count(self.model_cfg)
        tokens_per_s = self.tokens / self.elapsed if self.elapsed else 0.0
        summary = {
            "steps": self.step,
            "final_loss": self.last_loss,
            "heldout_loss": self.last_heldout,
            "tokens": self.tokens,
            "tokens_per_s": tokens_per_s,
            "skipped_steps": self.skipped,
            "params_total": counts["total"],
            "params_active": counts["active"],
            "precision": "bf16" if self.bf16 else "fp32",
            "world_size": self.world.size,
        }
        if self.peak is not None:
            summary["mfu"] = mfu(tokens_per_s, self.flops_per_token, self.peak, self.world.size)
        return summary

    def _bar_text(self) -> str:
        tok_s = self._last_tokens_per_s
        return f"{self.stage} loss {self.last_loss:.3f} · {tok_s:,.0f} tok/s"

    def _forward(self, batch: Any) -> StepOut:
        """The objective on one batch with the training model (wrapped for DDP/FSDP)."""
        return self._objective(self.train_model, batch)

    def _objective(self, model: torch.nn.Module, batch: Any) -> StepOut:
        """The objective on one batch (moved to the device) under the configured autocast."""
        moved = [None if t is None else t.to(self.device, non_blocking=True) for t in batch]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.objective.loss(model, type(batch)(*moved))

    def _train_step(self) -> None:
        tc, model = self.tc, self.model
        lr = lr_for(tc, self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        aux_sum = torch.zeros((), device=self.device)
        stats: list[list[dict[str, Any]]] = []
        extra_sum: dict[str, torch.Tensor] = {}  # the objective's own metrics
        local_tokens = 0
        for micro in range(tc.grad_accum):
            batch = self.loader.next_batch()
            with parallel.gradient_sync(self.train_model, micro == tc.grad_accum - 1):
                out = self._forward(batch)
                ((out.loss + out.aux_loss) / tc.grad_accum).backward()
            loss_sum += out.loss.detach()
            aux_sum += out.aux_loss.detach()
            stats.append(out.moe_stats)
            local_tokens += out.tokens
            for k, v in out.metrics.items():
                extra_sum[k] = extra_sum.get(k, 0) + v.detach().float()
        if self.experts is None:
            clipped = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip or math.inf)
        else:  # expert gradients are per-rank shards: reduce them, clip by the global norm
            self.experts.sync_grads()
            clipped = self.experts.clip_grad_norm(model, tc.grad_clip or math.inf)
        norm = parallel.grad_norm_value(clipped)
        local = [loss_sum.item() / tc.grad_accum, aux_sum.item() / tc.grad_accum]
        extra_local = [v.item() / tc.grad_accum for v in extra_sum.values()]
        loss, aux, stop, *extra_mean = parallel.all_mean(
            [*local, float(self._stop_signal), *extra_local], self.world, self.device
        )
        extra = dict(zip(extra_sum, extra_mean, strict=True))
        self._stop_agreed = stop > 0
        finite = math.isfinite(loss) and math.isfinite(aux) and math.isfinite(norm)
        if finite:
            self.optimizer.step()
            parallel.sync_router_buffers(model, self.world, before_update=True)
            for block in model.blocks:  # aux-free routers move their bias (DeepSeek-V3)
                if isinstance(block.mlp, MoE):
                    block.mlp.update_bias()
            parallel.sync_router_buffers(model, self.world, before_update=False)
            self._bad_steps = 0
            self.last_loss = loss
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self._bad_steps += 1
            self.skipped += 1
            if self.world.main:
                self.log.warning(
                    "step %d: loss %s, grad norm %s; skipped (%d so far)",
                    self.step + 1,
                    loss,
                    norm,
                    self.skipped,
                )
        step_tokens = local_tokens * self.world.size  # ranks take equal shares of a batch
        dt = time.perf_counter() - t0
        self.step += 1
        self.tokens += step_tokens
        self.elapsed += dt
        self._window_tokens += step_tokens
        self._window_time += dt
        if not finite or self.step % tc.log_every == 0 or self.step in (1, tc.steps):
            self._log_step(loss, aux, lr, norm, finite, stats, extra)
        if self._bad_steps >= tc.max_bad_steps:
            first = self.step - self._bad_steps + 1
            raise NonFiniteLossError(
                f"{self._bad_steps} steps in a row (steps {first} to {self.step}) had a "
                f"non-finite loss or gradient norm (last loss {loss}, grad norm {norm}; "
                f"train.max_bad_steps = {tc.max_bad_steps}); lower train.lr, raise "
                f"train.warmup_steps or check the data"
            )

    def _log_step(
        self,
        loss: float,
        aux: float,
        lr: float,
        norm: float,
        finite: bool,
        stats: list[list[dict[str, Any]]],
        extra: dict[str, float] | None = None,
    ) -> None:
        """One metrics row; every rank takes part (MoE counts are summed over ranks)."""
        tokens_per_s = self._window_tokens / max(self._window_time, 1e-9)
        self._last_tokens_per_s = tokens_per_s
        row: dict[str, Any] = {
            **self._tag,
            "step": self.step,
            "loss": loss,
            "aux_loss": aux,
            "lr": lr,
            "grad_norm": norm,
            "tokens": self.tokens,
            "tokens_per_s": tokens_per_s,
            "elapsed": self.elapsed,
            **(extra or {}),
        }
        if self.peak is not None:
            row["mfu"] = mfu(tokens_per_s, self.flops_per_token, self.peak, self.world.size)
        if not finite:
            row["skipped"] = True
        row["skipped_total"] = self.skipped
        if self.moe_layers:
            merged = moe_stats.merge(stats)
            if self.experts is None:  # under EP every rank routed the global batch already
                merged = moe_stats.merge(parallel.all_gather(merged, self.world))
            row["moe"] = [{"layer": i, **s} for i, s in zip(self.moe_layers, merged, strict=True)]
        if self.metrics is not None:
            self.metrics.write(row)
        self._window_tokens, self._window_time = 0, 0.0

    @torch.no_grad()
    def heldout_loss(self) -> float | None:
        """Mean loss over the first ``eval_batches`` held-out batches (None without any)."""
        if self.heldout is None:
            return None
        self.model.eval()
        self.heldout.reset()
        total = 0.0
        for _ in range(self.tc.eval_batches):
            total += self._objective(self.model, self.heldout.next_batch()).loss.item()
        self.model.train()
        (mean,) = parallel.all_mean([total / self.tc.eval_batches], self.world, self.device)
        return mean

    def _eval_heldout(self) -> None:
        self.last_heldout = self.heldout_loss()
        if self.last_heldout is not None and self.metrics is not None:
            self.metrics.write({**self._tag, "step": self.step, "heldout_loss": self.last_heldout})

    # ------------------------------------------------------------------ signals

    def _should_stop(self) -> bool:
        """One rank: a signal arrived. Several: any rank had one at the last step's reduce."""
        return bool(self._stop_signal) if self.world.size == 1 else self._stop_agreed

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """Turn SIGTERM/SIGINT into a stop at the next step boundary (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if not self._stop_signal:
                self._stop_signal = signum
            elif signum == signal.SIGINT:  # a second Ctrl-C: stop now, without a checkpoint
                raise KeyboardInterrupt
            # a repeated SIGTERM: the stop is already under way

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)
