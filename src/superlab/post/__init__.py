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
"""
