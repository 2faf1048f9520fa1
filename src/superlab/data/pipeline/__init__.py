"""The data pipeline: per-shard work in parallel, global work in input order, resumable.

Phase 1 (``shards.clean_shard``, one task per input shard, on the recipe's executor):
read (``Document`` and ``BadRecord``) -> each filter as a step -> ``data/work/filtered/
<k>.jsonl``, ``<k>.rejects.jsonl``, ``<k>.keys.json``, then the marker ``<k>.done`` by
atomic rename. On resume a shard with its marker is reused; any other is redone from
scratch. Phase 2 (``dedup``): global exact dedup over the keys, first occurrence in
(shard, position) order kept; near dedup through the hook in ``components``; then
``data/clean.jsonl`` and ``data/rejects.jsonl`` in input order. Phase 3, the tokenizer
and packing, live in ``superlab.data.stage``.

Steps are ``step(batch, reject) -> kept`` (``steps``); the readers, filters and dedup
APIs are reached only through ``components``.
"""
