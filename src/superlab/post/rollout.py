"""Rollouts: G completions per prompt through the serve engine, scored, as the trainer's batches.

``RolloutLoader`` is the ``rl`` stage's loader. Every ``num_iterations`` calls it takes the
next ``train.batch_size`` prompts in the ``Order`` (resumable, seeded), samples
``group_size`` completions of each with the current policy through
``serve.generate.Generator.generate_many`` (the engine: continuous batching, KV cache), scores
them (``rewards``), normalises the advantages per group (``grpo``) and computes the old and
reference log-probabilities it needs once. The calls in between return the same rollout.

Exact resume. Sampling seeds are a function of (``train.seed``, rollout, prompt index,
sample), not a running RNG, so a resumed stage draws the same completions. A rollout used
for more than one update is saved to ``<run>/rl/rollouts/`` (atomically) before its first
update; a stage resumed between two of its updates reads it back, since the policy that
sampled it is gone. The loader's position (calls, ``Order`` state, generation time) is in
every checkpoint; a rollout whose reward fails leaves the position where it was.

Legend: B completions (prompts x G), T positions, S rollout statistics.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from superlab.common.atomic import atomic_write_with
from superlab.common.ckpt import list_checkpoints
from superlab.config.rl import RLConfig
from superlab.post.grpo import IGNORE, RolloutBatch, group_advantages, token_logps
from superlab.post.rewards import Reward, score_group
from superlab.post.rl_data import Prompt
from superlab.serve.generate import Completion, Generator
from superlab.serve.sampling import SamplingParams
from superlab.train.order import Order


def sample_seed(seed: int, rollout: int, prompt: int, sample: int) -> int:
    """The sampling seed of one completion: the same on every run and every resume."""
    return int(np.random.SeedSequence([seed, rollout, prompt, sample]).generate_state(1)[0])


def sequences(
    prompts: list[list[int]], completions: list[list[int]], pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of prompt + completion rows, right-padded; targets are the
    completion tokens only (``IGNORE`` elsewhere). Shapes (B, T)."""
    full = [p + c for p, c in zip(prompts, completions, strict=True)]
    t = max(len(s) for s in full) - 1
    x = np.full((len(full), t), pad, dtype=np.int64)
    y = np.full((len(full), t), IGNORE, dtype=np.int64)
    for r, (p, s) in enumerate(zip(prompts, full, strict=True)):
        x[r, : len(s) - 1] = s[:-1]
        y[r, len(p) - 1 : len(s) - 1] = s[len(p) :]
    return torch.from_numpy(x), torch.from_numpy(y)


def sampled(cfg: RLConfig, seed: int) -> SamplingParams:
    """The recipe's sampling settings (``rl``: temperature, top-k, top-p, max tokens, stop)
    with one sample's seed."""
    return SamplingParams(
        max_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        stop=tuple(cfg.stop),
        seed=seed,
    )


class RolloutLoader:
    """The ``rl`` stage's batches (see the module docstring); ``bind`` gives it the models."""

    def __init__(
        self,
        cfg: RLConfig,
        prompts: list[Prompt],
        order: Order,
        tokenizer: Tokenizer,
        rewards: list[Reward],
        workdir: Path,
        ckpt_dir: Path,
        rank: int,
        pad: int,
    ) -> None:
        self.cfg, self.prompts, self.order, self.tok = cfg, prompts, order, tokenizer
        self.rewards, self.workdir, self.ckpt_dir = rewards, workdir, ckpt_dir
        self.rank, self.pad, self.seed = rank, pad, cfg.train.seed
        self.eos = tokenizer.token_to_id("<|endoftext|>")
        self.calls, self.gen_ms = 0, 0
        self.current: RolloutBatch | None = None
        self.current_rollout = -1
        self.policy: nn.Module | None = None
        self.reference: nn.Module | None = None
        self.device = torch.device("cpu")
        self.bf16, self.max_seq_len = False, 0

    @property
    def stat_names(self) -> list[str]:
        names = ["reward", "reward_std", "frac_reward_zero_std"]
        for r in self.rewards:
            names += [f"rewards/{r.name}/mean", f"rewards/{r.name}/std"]
        names += [
            "completions/mean_length",
            "completions/max_length",
            "completions/clipped_ratio",
            "time/generation_s",
            "time/generation_total_s",
        ]
        return names

    def bind(
        self,
        policy: nn.Module,
        reference: nn.Module | None,
        device: torch.device,
        bf16: bool,
        max_seq_len: int,
    ) -> None:
        """The policy to sample from (the trainer's model) and the reference (beta > 0)."""
        self.policy, self.reference, self.device = policy, reference, device
        self.bf16, self.max_seq_len = bf16, max_seq_len

    # ------------------------------------------------------------------ the Loader protocol

    def next_batch(self) -> RolloutBatch:
        iters = self.cfg.num_iterations
        rollout, first = divmod(self.calls, iters)[0], self.calls % iters == 0
        if rollout != self.current_rollout:
            if first:
                self.current = self._new_rollout(rollout)
            else:  # resumed between two updates of one rollout
                self.current = torch.load(self._path(rollout), weights_only=False)
            self.current_rollout = rollout
        assert self.current is not None
        self.calls += 1
        batch = self.current
        if not first:  # no generation in this step
            stats_S = batch.stats_S.clone()
            stats_S[self.stat_names.index("time/generation_s")] = 0.0
            stats_S[-1] = self.gen_ms / 1000
            batch = batch._replace(stats_S=stats_S)
        return batch

    def state(self) -> dict[str, int]:
        return {"calls": self.calls, "gen_ms": self.gen_ms, **self.order.state()}

    def load_state(self, state: dict[str, int]) -> None:
        self.calls, self.gen_ms = int(state["calls"]), int(state["gen_ms"])
        self.order.load_state({"epoch": state["epoch"], "index": state["index"]})
        self.current_rollout = -1

    def reset(self) -> None:
        self.load_state({"calls": 0, "gen_ms": 0, "epoch": 0, "index": 0})

    # ------------------------------------------------------------------ one rollout

    def _path(self, rollout: int) -> Path:
        return self.workdir / "rollouts" / f"rollout-{rollout:06d}.rank-{self.rank}.pt"

    def _new_rollout(self, rollout: int) -> RolloutBatch:
        cfg = self.cfg
        before = self.order.state()
        idx = self.order.next_indices()
        try:
            batch = self._sample_and_score(rollout, idx)
        except BaseException:
            self.order.load_state(before)  # the checkpoint saved now redoes this rollout
            raise
        if cfg.num_iterations > 1:
            atomic_write_with(self._path(rollout), lambda f: torch.save(batch, f))
            self._prune(rollout)
        return batch

    def _prune(self, rollout: int) -> None:
        """Drop saved rollouts older than the oldest checkpoint still kept needs."""
        found = list_checkpoints(self.ckpt_dir)
        oldest = found[0][0] // self.cfg.num_iterations if found else 0
        for path in (self.workdir / "rollouts").glob(f"rollout-*.rank-{self.rank}.pt"):
            n = int(path.name.split("-")[1].split(".")[0])
            if n < min(oldest, rollout):
                path.unlink(missing_ok=True)

    def _generate(self, rollout: int, idx: list[int]) -> list[Completion]:
        cfg, g = self.cfg, self.cfg.group_size
        assert self.policy is not None, "bind() the policy before the first batch"
        was_training = self.policy.training
        gen = Generator(self.policy, self.tok, self.max_seq_len)
        texts, params = [], []
        for i in idx:
            for s in range(g):
                texts.append(self.prompts[i].text)
                params.append(sampled(cfg, sample_seed(self.seed, rollout, i, s)))
        try:
            return gen.generate_many(texts, params, max_batch=len(texts))
        finally:
            self.policy.train(was_training)

    def _sample_and_score(self, rollout: int, idx: list[int]) -> RolloutBatch:
        cfg, g = self.cfg, self.cfg.group_size
        t0 = time.perf_counter()
        completions = self._generate(rollout, idx)
        gen_s = time.perf_counter() - t0
        values = np.zeros((len(self.rewards), len(completions)))  # (R, B)
        for k, i in enumerate(idx):
            p = self.prompts[i]
            group = completions[k * g : (k + 1) * g]
            texts: list[Any] = [c.text for c in group]
            if p.conversational:
                texts = [[{"role": "assistant", "content": t}] for t in texts]
            row = {key: [v] * g for key, v in p.row.items()}
            scored = score_group(self.rewards, p.id, [p.given] * g, texts, row)
            values[:, k * g : (k + 1) * g] = np.asarray(scored)
        weights = np.asarray([r.weight for r in self.rewards])[:, None]
        total_B = torch.from_numpy((weights * values).sum(0)).float()
        adv_B = group_advantages(total_B, g, cfg.scale_rewards)
        prompt_ids = [self.prompts[i].ids for i in idx for _ in range(g)]
        comp_ids = [
            c.token_ids + ([self.eos] if c.finish_reason == "eos" else []) for c in completions
        ]
        x_BT, y_BT = sequences(prompt_ids, comp_ids, self.pad)
        old_BT = self._logps(self.policy, x_BT, y_BT) if cfg.num_iterations > 1 else None
        ref_BT = self._logps(self.reference, x_BT, y_BT) if cfg.beta > 0 else None
        zeros = torch.zeros(y_BT.shape)
        self.gen_ms += round(gen_s * 1000)
        group_std = total_B.view(-1, g).std(dim=1)
        lengths = [len(c) for c in comp_ids]
        stats = [
            float(total_B.mean()),
            float(group_std.mean()),
            float((group_std == 0).float().mean()),
        ]
        for r in range(len(self.rewards)):
            stats += [float(values[r].mean()), float(values[r].std())]
        stats += [
            float(np.mean(lengths)),
            float(max(lengths)),
            float(np.mean([c.finish_reason == "length" for c in completions])),
            gen_s,
            self.gen_ms / 1000,
        ]
        return RolloutBatch(
            x_BT,
            y_BT,
            adv_B,
            zeros if old_BT is None else old_BT,
            zeros if ref_BT is None else ref_BT,
            torch.tensor(stats, dtype=torch.float32),
        )

    @torch.no_grad()
    def _logps(
        self, model: nn.Module | None, x_BT: torch.Tensor, y_BT: torch.Tensor
    ) -> torch.Tensor:
        """Per-token log-probabilities of the targets under ``model`` (eval mode), on the CPU."""
        assert model is not None
        was_training = model.training
        model.eval()
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = model(x_BT.to(self.device)).logits_BTV
            return token_logps(logits, y_BT.to(self.device))[0].cpu()
        finally:
            model.train(was_training)
