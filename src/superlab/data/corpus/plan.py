"""The corpus plan: which pages, copies, spam and junk the stream holds, and in what order.

The plan is small (one ``Slot`` per output document, holding references to the
source articles) and fixed before any text is built, so ids, ``dup_of`` links and
the stream order are known up front and the texts can be generated lazily.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

# Share of output documents of each planted kind; English content pages fill the
# rest (~72%). Chosen to resemble what web-scale pipelines report removing: exact
# and near duplicates are the largest class (Lee et al. 2022 find >1% of C4 is
# near-duplicate at the document level and far more at the substring level;
# RefinedWeb, Penedo et al. 2023, removes ~50% of CommonCrawl as duplicates).
FRACTIONS = {"exact_dup": 0.08, "near_dup": 0.10, "foreign": 0.04, "spam": 0.04, "junk": 0.015}
# Near-duplicate edit levels (fraction of words edited), cycled so each gets a
# fifth of the near duplicates; None is "same body, another site's boilerplate".
NEAR_DUP_LEVELS: tuple[float | None, ...] = (0.02, 0.05, 0.10, 0.20, None)
# Of English originals; with copies inheriting theirs, ~25% of all documents.
BOILERPLATE_FRACTION = 0.27
# Articles per page, all of one topic: mean 1.9, so most pages exceed Gopher's
# 50-word minimum while some single short articles fall under it.
PAGE_SIZES = (1, 2, 3)
PAGE_SIZE_WEIGHTS = (0.35, 0.40, 0.25)
# Copies are made of pages long enough for an edit fraction to mean something,
# and land at least this many base slots after their original.
MIN_COPY_WORDS = 50
MIN_GAP = 3

Article = dict[str, Any]


@dataclass(slots=True)
class Slot:
    """One output document to build: its kind, a key unique within the kind, and what it needs."""

    kind: str  # "page", "foreign", "spam", "junk", "exact_dup" or "near_dup"
    key: int
    lang: str = "en"
    articles: list[Article] = field(default_factory=list)
    boilerplate: bool = False
    orig: int | None = None  # copies: the key of the "page" slot copied
    level: float | None = None  # near_dup: fraction of words edited; None = boilerplate variant


def prepare(
    articles: dict[str, list[Article]], seed: int, max_articles: int | None
) -> dict[str, list[Article]]:
    """Each language's distinct articles in a seeded order; English cut to ``max_articles``."""
    out: dict[str, list[Article]] = {}
    for lang, arts in articles.items():
        # Sort first so the order never depends on the JSON's key order; drop repeated
        # extracts (13 in es, 4 in fr) so no unlabelled duplicate enters the corpus.
        seen: set[str] = set()
        uniq: list[Article] = []
        for a in sorted(arts, key=lambda a: (a["title"], a["extract"])):
            norm = " ".join(a["extract"].lower().split())
            if norm and norm not in seen:
                seen.add(norm)
                uniq.append(a)
        random.Random(f"wiki-demo:{seed}:shuffle:{lang}").shuffle(uniq)
        out[lang] = uniq
    if max_articles is not None:
        n_en = len(out["en"])
        for lang, arts in out.items():
            keep = max_articles if lang == "en" else math.ceil(max_articles * len(arts) / n_en)
            out[lang] = arts[:keep]
    return out


def group_pages(rng: random.Random, arts: list[Article]) -> list[list[Article]]:
    """Articles cut into pages of 1-3 articles of one topic, pages in a shuffled order."""
    by_topic: dict[str, list[Article]] = {}
    for a in arts:
        by_topic.setdefault(a["topic"], []).append(a)
    pages: list[list[Article]] = []
    for topic in sorted(by_topic):
        items, i = by_topic[topic], 0
        while i < len(items):
            size = rng.choices(PAGE_SIZES, PAGE_SIZE_WEIGHTS)[0]
            pages.append(items[i : i + size])
            i += size
    rng.shuffle(pages)
    return pages


def _split(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` by cumulative rounding (parts sum to total)."""
    s, acc, out = sum(weights), 0, []
    for w in weights:
        prev = round(total * acc / s) if s else 0
        acc += w
        out.append((round(total * acc / s) if s else 0) - prev)
    return out


def make_plan(langs: dict[str, list[Article]], seed: int) -> list[Slot]:
    """The slots of the corpus in stream order; every copy comes after its original."""
    rng = random.Random(f"wiki-demo:{seed}:plan")
    groups = group_pages(rng, langs["en"])
    total = len(groups) / (1 - sum(FRACTIONS.values()))
    n = {kind: round(f * total) for kind, f in FRACTIONS.items()}

    base = [Slot("page", i, articles=g) for i, g in enumerate(groups)]
    for i in rng.sample(range(len(base)), round(BOILERPLATE_FRACTION * len(base))):
        base[i].boilerplate = True
    foreign = [lang for lang in langs if lang != "en"]
    key, shares = 0, _split(n["foreign"], [len(langs[x]) for x in foreign])
    for lang, k in zip(foreign, shares, strict=True):
        for g in group_pages(rng, langs[lang])[:k]:
            base.append(Slot("foreign", key, lang=lang, articles=g))
            key += 1
    base += [Slot("spam", i) for i in range(n["spam"])]
    base += [Slot("junk", i) for i in range(n["junk"])]
    rng.shuffle(base)

    pos = {s.key: b for b, s in enumerate(base) if s.kind == "page"}
    words = {
        s.key: sum(len(a["extract"].split()) for a in s.articles) for s in base if s.kind == "page"
    }
    eligible = sorted(k for k, b in pos.items() if b < len(base) - MIN_GAP)
    eligible = [k for k in eligible if words[k] >= MIN_COPY_WORDS] or eligible or sorted(pos)
    copies = [Slot("exact_dup", i) for i in range(n["exact_dup"])]
    copies += [Slot("near_dup", i, level=NEAR_DUP_LEVELS[i % len(NEAR_DUP_LEVELS)])
               for i in range(n["near_dup"])]  # fmt: skip
    # Sort keys: base slot b sits at b; a copy lands uniformly between MIN_GAP slots
    # after its original and the end, so copies are spread out, never adjacent.
    keyed: list[tuple[float, int, Slot]] = [(float(b), b, s) for b, s in enumerate(base)]
    for j, c in enumerate(copies):
        c.orig = rng.choice(eligible)
        lo = pos[c.orig] + MIN_GAP
        keyed.append((rng.uniform(lo, max(len(base), lo + 1)), len(base) + j, c))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [s for _, _, s in keyed]
