"""Long-context probes: associative recall, multi-hop recall, passkey retrieval.

The shape: a generator makes ``ProbeItem``s (text, answer, the spans of the facts
needed) from ``(spec, seed, i)``; ``score_items`` turns items into per-item rows with
token positions and a chunk relation per chunk size; ``summarize`` aggregates rows
into accuracy by distance, by depth and by chunk relation with the context fault.
``probe_documents`` yields the training documents ``data.probes`` mixes in.
"""

from superlab.eval.probes.generate import KINDS, ProbeItem, make_item, make_items
from superlab.eval.probes.mix import probe_documents

__all__ = ["KINDS", "ProbeItem", "make_item", "make_items", "probe_documents"]
