"""The training loop: data windows in, checkpoints and ``metrics.jsonl`` out.

``Trainer(recipe, run_dir, ctx).train() -> dict`` trains ``recipe.model`` on the run's
packed shards (``superlab.data``'s contract) with ``recipe.train``, resuming from the
newest complete ``ckpt/step-N/`` exactly: same weights, optimizer state, data position
and RNG states, so an interrupted run gives the same per-step losses as an
uninterrupted one. The ``train`` stage is ``superlab.train.stage.run``; under
``torchrun`` the same trainer runs on every rank (``superlab.train.parallel``).

Modules: ``loader`` (windows, document ids, rank slices), ``schedule`` (cosine, WSD),
``trainer`` (the loop), ``parallel`` (DDP / FSDP2 / compile from outside),
``expert_parallel`` (experts split over ranks, all-to-all dispatch),
``checkpoint``, ``metrics`` (JSONL, TensorBoard), ``moe_stats`` (per-step expert load),
``mfu``, ``launch`` (``superlab train``'s resume policy and worker ranks, no torch).
See docs/train.md.
"""

from __future__ import annotations

from superlab.common.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "Trainer": "superlab.train.trainer",
        "TokenLoader": "superlab.train.loader",
        "lr_at": "superlab.train.schedule",
    },
)


__all__ = ["TokenLoader", "Trainer", "lr_at"]
