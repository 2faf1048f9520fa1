"""The training loop: AdamW, warmup + cosine, clipping, accumulation, checkpoints, metrics.

Weight decay (AdamW, Loshchilov & Hutter 2019) applies to the matrices of the
attention, MLP, expert and router projections; not to norm gains or the (possibly
tied) embedding, as in nanoGPT / Llama practice: decaying them only shrinks the
scale the norms and the softmax re-learn. The model has no biases.

A step whose loss or gradient norm is not finite is skipped (no optimizer update;
the data and the schedule move on) and logged with ``"skipped": true``; five in a row
raise ``NonFiniteLossError``. SIGTERM or SIGINT (Ctrl-C) stops the loop at the next
step boundary, saves a checkpoint and raises ``TrainingInterrupted`` (a
``KeyboardInterrupt``); a second signal stops at once without saving.
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
from superlab.train.checkpoint import load_checkpoint, remove_partial, save_checkpoint
from superlab.train.loader import TokenLoader, read_index
from superlab.train.metrics import append_row, truncate_after
from superlab.train.schedule import lr_at

MAX_BAD_STEPS = 5


class NonFiniteLossError(StageError):
    """Too many consecutive steps with a NaN/inf loss or gradient."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by a signal after saving a checkpoint."""


def resolve_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise StageError("train.device is 'cuda' but torch sees no CUDA device")
    return torch.device(name)


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
    """Trains ``recipe.model`` on ``run_dir``'s shards, resuming from its newest checkpoint."""

    def __init__(self, recipe: Recipe, run_dir: RunDir, ctx: StageContext | None = None) -> None:
        self.recipe, self.run = recipe, run_dir
        self.ctx = ctx if ctx is not None else StageContext(recipe=recipe, run=run_dir)
        self.log = self.ctx.log
        self.tc = tc = recipe.train
        self.device = resolve_device(tc.device)
        self.model_cfg = resolve_model_config(recipe, run_dir.shards)
        torch.manual_seed(tc.seed)
        self.model = Transformer(self.model_cfg).to(self.device)
        self.optimizer = build_optimizer(self.model, tc)
        self.loader = TokenLoader(run_dir.shards, "train", tc.batch_size, tc.seq_len, seed=tc.seed)
        self.heldout: TokenLoader | None = None
        try:
            self.heldout = TokenLoader(
                run_dir.shards, "heldout", tc.batch_size, tc.seq_len, shuffle=False
            )
        except ValueError as e:
            self.log.warning("no held-out loss: %s", e)
        self.moe_layers = [
            i for i in range(self.model_cfg.n_layers) if self.model_cfg.is_moe_layer(i)
        ]
        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        self.last_loss: float | None = None
        self.last_heldout: float | None = None
        self._bad_steps = 0
        self._saved_step = -1
        self._stop_signal = 0
        self._window_tokens, self._window_time = 0, 0.0
        self._resume()

    # ------------------------------------------------------------------ resume / save

    def _resume(self) -> None:
        remove_partial(self.run.ckpt)
        path = latest_checkpoint(self.run.ckpt)
        if path is not None:
            saved_cfg = json.loads((path / CONFIG).read_text())
            if saved_cfg != self.model_cfg.model_dump(mode="json"):
                raise StageError(
                    f"{path} was trained with a different model config than the recipe's; "
                    f"restore the recipe's model section or remove {self.run.ckpt}"
                )
            state = load_checkpoint(path, self.model, self.optimizer)
            self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
            self.last_loss, self.last_heldout = state["loss"], state["heldout_loss"]
            self.loader.load_state(state["loader"])
            self._saved_step = self.step
            self.log.info("resumed from %s (step %d)", path, self.step)
        dropped = truncate_after(self.run.metrics, self.step)
        if dropped:
            self.log.info("dropped %d metrics rows after step %d", dropped, self.step)

    def save(self) -> None:
        """Checkpoint the current step (once per step)."""
        if self._saved_step == self.step:
            return
        extra = {
            "loader": self.loader.state(),
            "tokens": self.tokens,
            "elapsed": self.elapsed,
            "loss": self.last_loss,
            "heldout_loss": self.last_heldout,
        }
        save_checkpoint(
            self.run.ckpt, self.step, self.model, self.optimizer, extra, self.tc.keep_last
        )
        self._saved_step = self.step

    # ------------------------------------------------------------------ the loop

    def train(self) -> dict[str, Any]:
        """Train until ``train.steps``; return the stage summary."""
        tc = self.tc
        with self._signals(), self.ctx.progress("train", total=tc.steps) as bar:
            bar.advance(self.step)
            while self.step < tc.steps:
                if self._stop_signal:
                    self.save()
                    name = signal.Signals(self._stop_signal).name
                    raise TrainingInterrupted(f"{name} at step {self.step}; checkpoint saved")
                self._train_step()
                bar.advance(1)
                if self.last_loss is not None:
                    bar.update(description=f"train loss {self.last_loss:.3f}")
                if self.step % tc.eval_every == 0 or self.step == tc.steps:
                    self._eval_heldout()
                if self.step % tc.ckpt_every == 0 or self.step == tc.steps:
                    self.save()
        counts = param_count(self.model_cfg)
        return {
            "steps": self.step,
            "final_loss": self.last_loss,
            "heldout_loss": self.last_heldout,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens / self.elapsed if self.elapsed else 0.0,
            "params_total": counts["total"],
            "params_active": counts["active"],
        }

    def _train_step(self) -> None:
        tc, model = self.tc, self.model
        lr = lr_at(
            self.step,
            lr=tc.lr,
            warmup_steps=tc.warmup_steps,
            total_steps=tc.steps,
            min_lr_ratio=tc.min_lr_ratio,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        aux_sum = torch.zeros((), device=self.device)
        for _ in range(tc.grad_accum):
            x_BT, y_BT = (t.to(self.device, non_blocking=True) for t in self.loader.next_batch())
            out = model(x_BT, y_BT)
            assert out.loss is not None
            ((out.loss + out.aux_loss) / tc.grad_accum).backward()
            loss_sum += out.loss.detach()
            aux_sum += out.aux_loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip or math.inf)
        loss = loss_sum.item() / tc.grad_accum
        aux = aux_sum.item() / tc.grad_accum
        norm = grad_norm.item()
        finite = math.isfinite(loss) and math.isfinite(aux) and math.isfinite(norm)
        if finite:
            self.optimizer.step()
            for block in model.blocks:  # aux-free routers move their bias (DeepSeek-V3)
                if isinstance(block.mlp, MoE):
                    block.mlp.update_bias()
            self._bad_steps = 0
            self.last_loss = loss
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self._bad_steps += 1
            self.log.warning("step %d: loss %s, grad norm %s; skipped", self.step + 1, loss, norm)
        step_tokens = tc.grad_accum * tc.batch_size * tc.seq_len
        dt = time.perf_counter() - t0
        self.step += 1
        self.tokens += step_tokens
        self.elapsed += dt
        self._window_tokens += step_tokens
        self._window_time += dt
        if not finite or self.step % tc.log_every == 0 or self.step in (1, tc.steps):
            row: dict[str, Any] = {
                "step": self.step,
                "loss": loss,
                "aux_loss": aux,
                "lr": lr,
                "grad_norm": norm,
                "tokens": self.tokens,
                "tokens_per_s": self._window_tokens / max(self._window_time, 1e-9),
                "elapsed": self.elapsed,
            }
            if not finite:
                row["skipped"] = True
            if self.moe_layers:
                stats = _moe_stats(model)
                row["moe"] = [
                    {"layer": i, **s} for i, s in zip(self.moe_layers, stats, strict=True)
                ]
            append_row(self.run.metrics, row)
            self._window_tokens, self._window_time = 0, 0.0
        if self._bad_steps >= MAX_BAD_STEPS:
            raise NonFiniteLossError(
                f"{MAX_BAD_STEPS} steps in a row (up to step {self.step}) had a non-finite loss "
                f"or gradient norm (last loss {loss}, grad norm {norm}); lower train.lr, "
                f"raise train.warmup_steps or check the data"
            )

    @torch.no_grad()
    def heldout_loss(self) -> float | None:
        """Mean loss over the first ``eval_batches`` held-out batches (None without any)."""
        if self.heldout is None:
            return None
        self.model.eval()
        self.heldout.reset()
        total = 0.0
        for _ in range(self.tc.eval_batches):
            x_BT, y_BT = (t.to(self.device) for t in self.heldout.next_batch())
            out = self.model(x_BT, y_BT)
            assert out.loss is not None
            total += out.loss.item()
        self.model.train()
        return total / self.tc.eval_batches

    def _eval_heldout(self) -> None:
        self.last_heldout = self.heldout_loss()
        if self.last_heldout is not None:
            append_row(self.run.metrics, {"step": self.step, "heldout_loss": self.last_heldout})

    # ------------------------------------------------------------------ signals

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """Turn SIGTERM/SIGINT into a stop at the next step boundary (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal:  # a second signal: stop now, without a checkpoint
                raise KeyboardInterrupt
            self._stop_signal = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def _moe_stats(model: Transformer) -> list[dict[str, Any]]:
    return [b.mlp.stats for b in model.blocks if isinstance(b.mlp, MoE)]
