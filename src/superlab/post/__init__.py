"""Post-training: ``sft`` and ``pref`` stages on the pre-training loop, not a second one.

Each stage builds a ``superlab.train.objective.Job`` (its batches, its objective, its
checkpoint directory ``ckpt/<stage>/`` and its starting model) and hands it to
``superlab.train.trainer.Trainer``, so AdamW, schedules, clipping, accumulation, bf16,
DDP/FSDP2, the NaN guard, exact resume and ``metrics.jsonl`` are the trainer's.

Rows come in TRL's formats (``rows``); a row that cannot be used is never dropped
silently: it goes to ``<run>/<stage>/rejects.jsonl`` with its file, line and reason, and
is counted in the stage's summary. Modules: ``rows`` (JSONL/Parquet, rejects), ``start``
(the model to start from), ``section`` (what both stages share: their section, the order of
their examples, ``run``), ``sft_data`` and ``sft``, ``pref_data``, ``losses``, ``reference``
(cached reference log-probabilities) and ``pref``, ``arithmetic`` (on-policy pairs from a
verifiable task). Batches come in ``superlab.train.order.Order``. See docs/post-train.md.

The ``rl`` stage (GRPO) has the same shape with a loader that generates its batches:
``rl_data`` (prompts), ``rollout`` (G completions per prompt through the serve engine,
scored), ``rewards`` (built-ins and TRL-signature functions), ``grpo`` (advantages, the
clipped loss with k3 KL), ``rl`` (the stage), ``rl_eval`` (held-out pass@k) and ``tasks``
(the shipped sums task).
"""
