"""The defects planted in demo pages: copies, edited copies, spam and junk.

Each generator takes an explicit ``random.Random`` so the corpus is a pure
function of its seed. The thresholds named below are the ones the pipeline's
filters use (``FilterConfig``): Gopher's quality rules (Rae et al. 2021,
appendix A, table A1) and C4's (Raffel et al. 2020, §2.2).
"""

from __future__ import annotations

import random

from superlab.data.corpus.boilerplate import slugify

# Exact copies differ from their original by at most whitespace and case, so a
# hash of ``" ".join(text.lower().split())`` finds them while a raw-bytes hash
# finds only the "identical" ones (CCNet, Wenzek et al. 2020, normalizes the same way).
DUP_VARIANTS = ("identical", "identical", "whitespace", "whitespace", "case")


def exact_copy(rng: random.Random, text: str) -> tuple[str, str]:
    """A copy of ``text`` that is equal after lowercasing and collapsing whitespace."""
    variant = rng.choice(DUP_VARIANTS)
    if variant == "identical":
        return text, variant
    lines = text.split("\n")
    if variant == "case":
        # Shouting title; fall back to lowering the whole page where upper() is not
        # undone by lower() (e.g. "ß" -> "SS").
        title = lines[0].upper()
        if title.lower() == lines[0].lower():
            lines[0] = title
        else:
            lines = [line.lower() for line in lines]
        return "\n".join(lines), variant
    out: list[str] = []
    for line in lines:
        words = line.split(" ")
        line = "".join(w + rng.choice((" ", " ", " ", "  ", "\t")) for w in words).rstrip()
        out.append(rng.choice(("", " ", "  ")) + line + rng.choice(("", " ", "   ")))
        if rng.random() < 0.3:
            out.append(rng.choice(("", "  ")))
    return "\n".join(out), variant


def edit_words(
    rng: random.Random, lines: list[str], fraction: float, vocab: list[str]
) -> tuple[list[str], int]:
    """``lines`` with ``fraction`` of their words substituted, deleted or inserted; and the count.

    Substitutions and insertions draw from ``vocab`` (words of another article), the
    way scraped copies and "spun" pages drift from their source. Half the edits are
    substitutions, a quarter each deletions and insertions.
    """
    words = [line.split() for line in lines]
    n_edits = max(1, round(fraction * sum(map(len, words))))
    # The last word of a line carries its terminal punctuation; editing it would make
    # C4's line rule drop the whole line and hide the copy from near-dup detection.
    flat = [(i, j) for i, ws in enumerate(words) for j in range(len(ws) - 1)]
    ops: dict[tuple[int, int], str] = {}
    for pos in rng.sample(flat, min(n_edits, len(flat))):
        ops[pos] = rng.choice(("sub", "sub", "del", "ins"))
    out = []
    for i, ws in enumerate(words):
        new: list[str] = []
        for j, w in enumerate(ws):
            op = ops.get((i, j))
            if op is None:
                new.append(w)
            elif op == "sub":
                new.append(_other_word(rng, vocab, w))
            elif op == "ins":
                new += [w, _other_word(rng, vocab, w)]
        out.append(" ".join(new))
    return out, len(ops)


def _other_word(rng: random.Random, vocab: list[str], word: str) -> str:
    for _ in range(8):
        cand = rng.choice(vocab)
        if cand != word:
            return cand
    return word + "s"


_SPAM_WORDS = ("cheap", "best", "free", "buy", "discount", "online", "top", "deal")
_PROMOS = (
    "Click here to get the best {kw} deals today!",
    "Limited offer: buy {kw} now and save 70 percent!",
    "Do not miss the cheapest {kw} on the internet!",
    "Win a free {kw} package, sign up now!",
)
SPAM_KINDS = ("keyword_stuffing", "repeated_lines", "link_list", "symbols")


def spam_page(rng: random.Random, keyword: str, sentence: str) -> tuple[str, list[str], str]:
    """A spam page about ``keyword``: its title, its lines, and which spam kind it is.

    Each kind is built to cross a Gopher threshold by a wide margin while keeping
    50+ words, so it is the quality rule, not the length rule, that catches it:
    keyword stuffing (top 2-gram character fraction > 0.2), repeated lines
    (duplicate-line character fraction > 0.2), link lists (> 90% bullet lines, and
    no terminal punctuation for C4), hashtags and ellipses (symbol-to-word ratio
    > 0.1, > 30% of lines ending in an ellipsis). ``sentence`` is real text,
    as spam pages copy a little to look legitimate.
    """
    kw = keyword.lower()
    kind = rng.choice(SPAM_KINDS)
    title = f"{rng.choice(_SPAM_WORDS).title()} {keyword} {rng.choice(('Deals', 'Offers'))} 2019"
    if kind == "keyword_stuffing":
        lines = [sentence]
        for _ in range(rng.randint(5, 8)):
            phrases = [f"cheap {kw}" if rng.random() < 0.6 else f"{rng.choice(_SPAM_WORDS)} {kw}"
                       for _ in range(rng.randint(6, 10))]  # fmt: skip
            lines.append(" ".join(phrases) + ".")
    elif kind == "repeated_lines":
        promo = rng.choice(_PROMOS).format(kw=kw)
        lines = [sentence] + [promo] * rng.randint(8, 14)
    elif kind == "link_list":
        bullet, slug = rng.choice(("•", "-")), slugify(kw, 30)
        lines = [
            f"{bullet} {rng.choice(_SPAM_WORDS).title()} {keyword} "
            f"https://{rng.choice(_SPAM_WORDS)}-{slug}.test/offer-{rng.randint(1, 999)}"
            for _ in range(rng.randint(18, 30))
        ]
    else:  # symbols
        tags = [f"#{w}" for w in (*_SPAM_WORDS, kw.replace(" ", ""), "win", "sale")]
        lines = [sentence]
        for _ in range(rng.randint(9, 12)):
            if rng.random() < 0.5:
                # Ends in "!" so C4's line rule keeps it and Gopher's symbol ratio sees it.
                lines.append(f"Hot {kw} offers today {' '.join(rng.sample(tags, 6))}!")
            else:
                tag = rng.choice(_SPAM_WORDS)
                lines.append(f"You will not believe these {kw} offers #{tag}...")
    return title, lines, kind


JUNK_KINDS = ("short", "numbers", "symbols")
_SHORT = (
    "404 Not Found",
    "Page not found. The page you requested could not be found.",
    "Loading...",
    "Click here to continue",
    "Access denied.",
    "This page is under construction.",
)


def junk_page(rng: random.Random) -> tuple[list[str], str]:
    """A page with almost no text: an error stub, a table of numbers, or a row of symbols."""
    kind = rng.choice(JUNK_KINDS)
    if kind == "short":
        return [rng.choice(_SHORT)], kind
    if kind == "numbers":
        # Gopher: fewer than 80% of words with an alphabetic character.
        rows = [
            " | ".join([str(rng.randint(1990, 2023))]
                       + [f"{rng.uniform(0, 100):.1f}" for _ in range(rng.randint(4, 7))])
            for _ in range(rng.randint(8, 20))
        ]  # fmt: skip
        return ["Table 1", *rows], kind
    marks = ("***", "===", "###", "|||", ">>>", "<<<", "~~~", "---", "+++", "$$$")
    rows = [" ".join(rng.choice(marks) for _ in range(rng.randint(5, 12))) for _ in range(6)]
    return rows, kind
