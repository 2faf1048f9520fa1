"""Long-context probe texts: associative recall, multi-hop recall, passkey retrieval.

The shape: a generator makes ``ProbeItem``s (text, answer, the spans of the facts
needed) and training documents (the same contexts with answered queries) from
``(spec, seed, i)``; ``probe_documents`` yields the documents the data stage mixes into
the train split (``data.probes``), and ``TrainOnly`` keeps them out of held-out. The
items are scored by ``superlab.eval.probes``, which sits above this package.
"""

from superlab.data.probes.generate import KINDS, ProbeItem, make_item, make_items
from superlab.data.probes.mix import TrainOnly, probe_documents

__all__ = ["KINDS", "ProbeItem", "TrainOnly", "make_item", "make_items", "probe_documents"]
