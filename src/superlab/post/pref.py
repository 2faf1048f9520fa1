"""The ``pref`` stage: DPO, IPO or SimPO on preference pairs, on the pre-training loop.

Pairs come from the ``pref`` section's files (TRL's format, ``pref_data``) and, with
``generate: arithmetic``, from the starting model's own wrong answers (``arithmetic``).
For DPO and IPO the reference log-probabilities of every pair are computed once, before
the first step, and cached in ``<run>/pref/reference/`` (``reference``); each batch carries
its pairs' cached values, so no reference model is held while training. A reference
whose tokenizer differs from the policy's is refused. Metrics use TRL's names:
``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
``logps/chosen``, ``logps/rejected``. Checkpoints go to ``ckpt/pref/step-N``.

Legend: P pairs (this rank's share of the batch), T sequence.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from superlab.common import StageContext, StageError
from superlab.config.post import PrefConfig
from superlab.post.examples import Examples, read_examples
from superlab.post.losses import LENGTH_NORMALISED, preference_loss
from superlab.post.pref_data import Pair, encode_pair, pair_batch, sequence_logps
from superlab.post.reference import reference_logps
from superlab.post.section import SectionStage, run_section
from superlab.post.sft import pad_id
from superlab.post.start import Start, resolve_start, vocabulary_difference
from superlab.train.objective import Job, StepOut
from superlab.train.order import Order, Ordered


class PrefBatch(NamedTuple):
    """Chosen rows then rejected rows (2P, T), and the pairs' cached reference values."""

    x_BT: torch.Tensor
    y_BT: torch.Tensor
    ref_sum_P2: torch.Tensor  # (P, 2): chosen, rejected summed log-probabilities
    ref_count_P2: torch.Tensor  # (P, 2): their target counts
    real_BT: torch.Tensor


class PairLoader(Ordered):
    """Batches of pairs in the ``Order``'s resumable order, with their reference values."""

    def __init__(self, pairs: list[Pair], ref: np.ndarray, order: Order, pad: int) -> None:
        self.pairs, self.ref, self.order, self.pad = pairs, ref, order, pad

    def next_batch(self) -> PrefBatch:
        idx = self.order.next_indices()
        x_BT, y_BT = pair_batch([self.pairs[i] for i in idx], self.pad)
        ref = torch.from_numpy(self.ref[idx])
        real_BT = torch.zeros_like(x_BT, dtype=torch.bool)
        for r, i in enumerate(idx):
            real_BT[r, : len(self.pairs[i].chosen.ids) - 1] = True
            real_BT[r + len(idx), : len(self.pairs[i].rejected.ids) - 1] = True
        return PrefBatch(x_BT, y_BT, ref[:, :2], ref[:, 2:], real_BT)


class PreferenceLoss:
    """The ``pref`` section's loss over one batch of pairs, with TRL's metrics."""

    def __init__(self, cfg: PrefConfig) -> None:
        self.cfg = cfg

    def loss(self, model: nn.Module, batch: PrefBatch) -> StepOut:
        cfg = self.cfg
        out = model(batch.x_BT)
        sums_B, counts_B = sequence_logps(out.logits_BTV, batch.y_BT)
        p = len(sums_B) // 2
        ref_P2 = batch.ref_sum_P2.float()
        if cfg.loss in LENGTH_NORMALISED:
            logps_B = sums_B / counts_B
            ref_P2 = ref_P2 / batch.ref_count_P2.float()
        else:
            logps_B = sums_B
        pc, pr = logps_B[:p], logps_B[p:]
        losses_P, chosen_P, rejected_P = preference_loss(
            cfg.loss,
            pc,
            pr,
            ref_P2[:, 0],
            ref_P2[:, 1],
            cfg.beta,
            cfg.label_smoothing,
            cfg.simpo_gamma,
        )
        metrics = {
            "rewards/chosen": chosen_P.mean(),
            "rewards/rejected": rejected_P.mean(),
            "rewards/accuracies": (chosen_P > rejected_P).float().mean(),
            "rewards/margins": (chosen_P - rejected_P).mean(),
            "logps/chosen": pc.detach().mean(),
            "logps/rejected": pr.detach().mean(),
        }
        tokens = int(batch.real_BT.sum())
        return StepOut(losses_P.mean(), out.aux_loss, tokens, out.moe_stats, metrics)


class PrefStage(SectionStage[PrefConfig]):
    """The ``pref`` section as the trainer's post-training stage (``PostStage``)."""

    name = "pref"

    def _pairs(self, start: Start, rank: int, device: torch.device) -> Examples[Pair]:
        cfg, tc, tok = self.cfg, self.cfg.train, start.tokenizer

        def encode(row: dict[str, Any]) -> Pair:
            return encode_pair(tok, row, tc.seq_len + 1, cfg.truncation)

        files = list(cfg.data)
        if cfg.generate == "arithmetic":
            from superlab.post.arithmetic import write_pairs

            files.append(str(write_pairs(start, cfg, self.work, device, rank == 0)))
        return read_examples(files, encode, cfg.heldout_every)

    def build(self, rank: int, world_size: int, device: torch.device) -> Job:
        cfg, tc = self.cfg, self.cfg.train
        start = self.start()
        examples = self._pairs(start, rank, device)
        ckpt = self.keep(examples, rank)
        pad = pad_id(start.tokenizer)
        pairs = examples.train + examples.heldout
        ref_stats: dict[str, Any] = {"computed": 0, "cached": 0, "source": None}
        if cfg.loss == "simpo":  # reference-free
            ref = np.zeros((len(pairs), 4))
            ref[:, 2:] = 1.0
        else:
            reference = start if cfg.reference is None else self._reference(start)
            ref, counts = reference_logps(
                reference.load,
                reference.source,
                pairs,
                self.work / "reference",
                batch_size=tc.batch_size,
                pad_id=pad,
                device=device,
                write=rank == 0,
            )
            ref_stats = {**counts, "source": reference.source}
            self.log.info(
                "pref: reference log-probabilities of %d pairs: %d computed, %d from the cache",
                len(pairs),
                counts["computed"],
                counts["cached"],
            )
        n = len(examples.train)
        order = self.order(n, rank, world_size)
        heldout = None
        if examples.heldout:
            held_order = self.order(len(examples.heldout), rank, world_size, heldout=True)
            heldout = PairLoader(examples.heldout, ref[n:], held_order, pad)
        self.summary = {
            "init": start.source,
            "loss": cfg.loss,
            **examples.summary(),
            "reference": ref_stats,
        }
        return Job(
            self.name,
            ckpt,
            start.model_cfg,
            PairLoader(examples.train, ref[:n], order, pad),
            heldout,
            PreferenceLoss(cfg),
            start.load,
        )

    def _reference(self, policy: Start) -> Start:
        assert self.cfg.reference is not None
        ref = resolve_start(self.cfg.reference, self.run, "pref.reference")
        why = vocabulary_difference(policy.tokenizer, ref.tokenizer)
        if why is None and ref.model_cfg.vocab_size != policy.model_cfg.vocab_size:
            why = f"model vocab_size {ref.model_cfg.vocab_size} vs {policy.model_cfg.vocab_size}"
        if why is not None:
            raise StageError(
                f"pref.reference {ref.source} does not share the policy's vocabulary "
                f"({policy.source}): {why}; DPO compares log-probabilities token by token"
            )
        return ref


def run(ctx: StageContext) -> dict[str, Any]:
    """Optimise preferences as the recipe's ``pref`` section says; resume from ``ckpt/pref/``."""
    return run_section(ctx, PrefStage)
