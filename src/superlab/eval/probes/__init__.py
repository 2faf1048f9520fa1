"""Long-context probes, scored: accuracy by distance, by depth and by chunk relation.

The shape: ``score.score_items`` turns ``ProbeItem``s into per-item rows with token positions
and a chunk relation per chunk size; ``score.summarize`` aggregates rows into accuracy by
distance, by depth and by chunk relation with the context fault. The items, and the
training documents ``data.probes`` mixes in, come from ``superlab.data.probes`` (the data
stage needs them, and ``data`` sits below ``eval``).
"""
