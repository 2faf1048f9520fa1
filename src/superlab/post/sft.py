"""The ``sft`` stage: supervised fine-tuning on assistant tokens, on the pre-training loop.

Rows (``sft_data``) are packed into windows of ``sft.train.seq_len`` inputs with document
masking, shuffled per epoch (``superlab.train.order``), and trained by
``superlab.train.trainer.Trainer`` with the ``AssistantLoss`` objective: the mean next-token
cross-entropy over the batch's assistant target tokens (every other position has target
``IGNORE`` and so no gradient).
Checkpoints go to ``ckpt/sft/step-N``; the tokenizer (with the chat tokens) to
``ckpt/sft/tokenizer.json``; rejected rows to ``<run>/sft/rejects.jsonl``.

Legend: B batch, T sequence.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from superlab.common import StageContext
from superlab.config.post import SFTConfig
from superlab.data.tokenizer import EOS, PAD
from superlab.post.examples import read_examples
from superlab.post.section import SectionStage, run_section
from superlab.post.sft_data import Example, Packed, encode_row, pack
from superlab.train.objective import Job, StepOut
from superlab.train.order import Order, Ordered


class SFTBatch(NamedTuple):
    """Inputs, targets (``IGNORE`` off the assistant tokens), document ids, real tokens."""

    x_BT: torch.Tensor
    y_BT: torch.Tensor
    doc_ids_BT: torch.Tensor | None
    real_BT: torch.Tensor


class PackedLoader(Ordered):
    """Batches of packed rows in the ``Order``'s resumable order."""

    def __init__(self, packed: Packed, order: Order, documents: bool) -> None:
        self.packed, self.order, self.documents = packed, order, documents

    def next_batch(self) -> SFTBatch:
        """The next rows, cut after their last real token (padding after it is never seen
        by a real token under causal attention, so the loss is unchanged)."""
        rows = self.order.next_indices()
        p = self.packed
        real = p.real_NT[rows]
        t = int(real.any(axis=0).nonzero()[0].max()) + 1
        return SFTBatch(
            torch.from_numpy(p.x_NT[rows, :t]),
            torch.from_numpy(p.y_NT[rows, :t]),
            torch.from_numpy(p.doc_NT[rows, :t]) if self.documents else None,
            torch.from_numpy(real[:, :t]),
        )


class AssistantLoss:
    """Mean next-token cross-entropy over the assistant target tokens of the batch."""

    def loss(self, model: nn.Module, batch: SFTBatch) -> StepOut:
        out = model(batch.x_BT, batch.y_BT, doc_ids_BT=batch.doc_ids_BT)
        return StepOut(out.loss, out.aux_loss, int(batch.real_BT.sum()), out.moe_stats)


def pad_id(tok: Any) -> int:
    """``<|pad|>``, else ``<|endoftext|>``, else 0: the filler of a window's unused tail."""
    for token in (PAD, EOS):
        i = tok.token_to_id(token)
        if i is not None:
            return int(i)
    return 0


class SFTStage(SectionStage[SFTConfig]):
    """The ``sft`` section as the trainer's post-training stage (``PostStage``)."""

    name = "sft"

    def build(self, rank: int, world_size: int, device: torch.device) -> Job:
        cfg, tc = self.cfg, self.cfg.train
        start = self.start()
        tok = start.tokenizer

        def encode(row: dict[str, Any]) -> Example:
            return encode_row(tok, row, cfg.loss_on, tc.seq_len + 1, cfg.truncation)

        files = list(cfg.data)
        if cfg.generate == "arithmetic":
            from superlab.post.arithmetic import write_sft_rows

            work = self.work if rank == 0 else Path(tempfile.mkdtemp())
            files.append(str(write_sft_rows(cfg.generate_rows, tc.seed, work)))
        examples = read_examples(files, encode, cfg.heldout_every)
        ckpt = self.keep(examples, rank)
        if examples.rejects.rows:
            self.log.warning(
                "sft: %d of %d rows rejected (%s); see %s",
                len(examples.rejects.rows),
                examples.rows,
                ", ".join(f"{k}: {v}" for k, v in examples.rejects.counts().items()),
                self.work / "rejects.jsonl",
            )
        pad = pad_id(tok)
        train = pack(examples.train, tc.seq_len, pad, cfg.packing)
        order = self.order(len(train.x_NT), rank, world_size)
        heldout = None
        if examples.heldout:
            held = pack(examples.heldout, tc.seq_len, pad, cfg.packing)
            held_order = self.order(len(held.x_NT), rank, world_size, heldout=True)
            heldout = PackedLoader(held, held_order, cfg.packing)
        self.summary = {
            "init": start.source,
            **examples.summary(),
            "packed_rows": len(train.x_NT),
            "assistant_tokens": int((train.y_NT >= 0).sum()),
            "fill": float(train.real_NT.mean()) if len(train.real_NT) else 0.0,
        }
        self.log.info(
            "sft: from %s; %d examples in %d rows of %d (%.0f%% filled), %d held out",
            start.source,
            len(examples.train),
            len(train.x_NT),
            tc.seq_len,
            100 * self.summary["fill"],
            len(examples.heldout),
        )
        return Job(
            self.name,
            ckpt,
            start.model_cfg,
            PackedLoader(train, order, cfg.packing),
            heldout,
            AssistantLoss(),
            start.load,
        )


def run(ctx: StageContext) -> dict[str, Any]:
    """Fine-tune as the recipe's ``sft`` section says; resume from ``ckpt/sft/`` if it can."""
    return run_section(ctx, SFTStage)
