"""Our filter chain against datatrove's on the same real documents: agreement and speed.

Both chains run the same rules in the same order: C4 line rules (Raffel et al. 2020),
Gopher quality and repetition (Rae et al. 2021, app. A), FineWeb's three rules
(Penedo et al. 2024). datatrove is configured to our rule set and thresholds: its C4
citation removal, 5-sentence minimum and 1000-character-word rule are off (we do not
have them), FineWeb's duplicate-character ratio is the paper's 0.1 (datatrove's
default is 0.01) and its extra ``list_ratio`` rule is off.

    python bench/filters_vs_datatrove.py --quick
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from superlab.config.recipe import FilterConfig, SourceConfig
from superlab.data.corpus.wiki_demo import iter_wiki_demo
from superlab.data.filters import apply_filters, build_filters

AEB = Path("/work/shared/data/web/article-extraction-benchmark/ground-truth.json")
Decision = tuple[bool, str]  # (kept, reason or "")


def load_texts(max_articles: int | None) -> list[tuple[str, str]]:
    """(id, text): the demo corpus pages, then the article-extraction benchmark's bodies."""
    texts = [(d.id, d.text) for d in iter_wiki_demo(SourceConfig(max_articles=max_articles))]
    if AEB.exists():
        truth = json.loads(AEB.read_text(encoding="utf-8"))
        texts += [(f"aeb-{k[:12]}", v["articleBody"]) for k, v in truth.items()]
    return texts


def ours() -> Callable[[str, str], Decision]:
    """Our chain: C4 lines, length, Gopher quality and repetition, FineWeb."""
    filters = build_filters(FilterConfig())
    from superlab.data import Document

    def run(doc_id: str, text: str) -> Decision:
        v = apply_filters(filters, Document(doc_id, text))
        return (True, "") if v is True else (False, v[1])

    return run


def alpha_words_over_words(min_ratio: float) -> Callable[[object], bool | tuple[bool, str]]:
    """Gopher's alpha-word rule on datatrove's tokens, punctuation-only tokens left out.

    datatrove divides by all spaCy tokens, punctuation included ("," and "(" are
    "words"), which drops ~5% of clean Wikipedia pages; Gopher's rule (Rae et al. 2021,
    A.1.1) is over words, and datatrove's own word count leaves punctuation out.
    """
    from datatrove.utils.text import PUNCTUATION_SET, split_into_words

    def check(doc: object) -> bool | tuple[bool, str]:
        words = [w for w in split_into_words(doc.text) if any(c not in PUNCTUATION_SET for c in w)]
        alpha = sum(any(c.isalpha() for c in w) for w in words)
        return True if words and alpha / len(words) >= min_ratio else (False, "alpha_words")

    return check


def datatrove(aligned: bool) -> Callable[[str, str], Decision]:
    """datatrove's filters set to our rules and thresholds, in our order.

    ``aligned``: Gopher's alpha-word ratio over words, not over all tokens (see above).
    """
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    cfg = FilterConfig()
    alpha = cfg.min_alpha_words_ratio
    quality = GopherQualityFilter(max_non_alpha_words_ratio=None if aligned else alpha)
    filters = [
        ("c4", C4QualityFilter(remove_citations=False, min_num_sentences=-1, max_word_length=-1)),
        ("gopher", quality),
        *([("gopher", alpha_words_over_words(alpha))] if aligned else []),
        ("gopher", GopherRepetitionFilter()),
        (
            "fineweb",
            FineWebQualityFilter(
                line_punct_thr=cfg.fineweb_min_punct_line_ratio,
                short_line_thr=cfg.fineweb_max_short_line_ratio,
                short_line_length=cfg.fineweb_short_line_chars,
                char_duplicates_ratio=cfg.fineweb_max_dup_line_char_ratio,
                new_line_ratio=float("inf"),
            ),
        ),
    ]

    def run(doc_id: str, text: str) -> Decision:
        doc = Document(text=text, id=doc_id)
        for name, f in filters:
            v = f(doc) if callable(f) and not hasattr(f, "filter") else f.filter(doc)
            if v is not True:
                return False, f"{name}:{v[1] if isinstance(v, tuple) else 'drop'}"
        return True, ""

    return run


def timed(run: Callable[[str, str], Decision], texts: Iterable[tuple[str, str]]) -> tuple:
    """(decisions, docs/s) of ``run`` over ``texts``, after one warm-up call."""
    texts = list(texts)
    run(*texts[0])  # load models / tokenizers outside the timing
    t = time.perf_counter()
    out = [run(i, s) for i, s in texts]
    return out, len(texts) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 source articles (< 3 min)")
    ap.add_argument("--max-articles", type=int, default=None, help="default: all (10,033)")
    ap.add_argument("--show", type=int, default=15, help="disagreeing documents to list")
    args = ap.parse_args()
    texts = load_texts(2000 if args.quick else args.max_articles)
    print(f"documents: {len(texts)}")
    mine, mine_rate = timed(ours(), texts)
    raw, raw_rate = timed(datatrove(aligned=False), texts)
    theirs, theirs_rate = timed(datatrove(aligned=True), texts)
    print(f"ours:      {mine_rate:8.0f} docs/s, kept {sum(k for k, _ in mine)}")
    print(f"datatrove: {raw_rate:8.0f} docs/s, kept {sum(k for k, _ in raw)} (as shipped)")
    print(f"datatrove: {theirs_rate:8.0f} docs/s, kept {sum(k for k, _ in theirs)} (aligned)")
    for name, ds in (("ours", mine), ("datatrove aligned", theirs)):
        print(f"{name} drops: {dict(Counter(r for k, r in ds if not k).most_common())}")
    agree_raw = report("as shipped", texts, mine, raw, 0)
    agree = report("aligned alpha-word rule", texts, mine, theirs, args.show)
    speedup = mine_rate / raw_rate
    print(f"agreement with datatrove as shipped: {agree_raw:.4f}")
    print(
        f"RESULT filters_agreement {agree:.4f} target >= 0.99 {'PASS' if agree >= 0.99 else 'FAIL'}"
    )
    print(
        f"RESULT filters_speedup_vs_datatrove {speedup:.2f} target >= 2 "
        f"{'PASS' if speedup >= 2 else 'FAIL'}"
    )


def report(
    title: str,
    texts: list[tuple[str, str]],
    mine: list[Decision],
    theirs: list[Decision],
    show: int,
) -> float:
    """Print the disagreements by (our reason, datatrove's reason); return the agreement."""
    pairs = Counter(
        (a[1] or "keep", b[1] or "keep") for a, b in zip(mine, theirs, strict=True) if a[0] != b[0]
    )
    print(f"disagreements with datatrove {title} (ours -> datatrove): count")
    for (a, b), n in pairs.most_common():
        print(f"  {a:28s} {b:36s} {n}")
    shown = [
        (i, a[1] or "keep", b[1] or "keep")
        for (i, _), a, b in zip(texts, mine, theirs, strict=True)
        if a[0] != b[0]
    ]
    for i, a, b in shown[:show]:
        print(f"    {i}: ours {a}, datatrove {b}")
    return 1 - sum(pairs.values()) / len(texts)


if __name__ == "__main__":
    main()
