"""Probe documents for the train split, as the data stage mixes them in (``data.probes``).

Documents get ids ``probe-<kind>-<seed>-<i>``; ``TrainOnly`` sends them to the train
split whatever their hash, so held-out perplexity stays a measure of the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator

from superlab.config.recipe import ProbeMixConfig
from superlab.data.document import Document
from superlab.data.probes.generate import training_document
from superlab.data.split import TRAIN, HeldoutSplit

PREFIX = "probe-"


def probe_documents(cfg: ProbeMixConfig) -> Iterator[Document]:
    """``cfg.docs`` documents of each kind, interleaved kind by kind."""
    for i in range(cfg.docs):
        for kind in cfg.kinds:
            text = training_document(kind, cfg, cfg.seed, i, cfg.queries)
            yield Document(text=text, id=f"{PREFIX}{kind}-{cfg.seed}-{i}", source="probes")


class TrainOnly(HeldoutSplit):
    """A held-out split that never takes a probe document."""

    def __init__(self, split: HeldoutSplit) -> None:
        super().__init__(split.fraction, split.forced)

    def split_of(self, doc_id: str) -> str:
        """``train`` for probe documents, else the wrapped split's answer."""
        return TRAIN if doc_id.startswith(PREFIX) else super().split_of(doc_id)
