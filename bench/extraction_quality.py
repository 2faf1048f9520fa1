"""HTML-to-text quality on the scrapinghub article-extraction benchmark (181 real pages).

For each page we extract text from ``html/<id>.html.gz`` and compare it with the
human-written ``articleBody`` in ``ground-truth.json``.

Metric (the benchmark's own evaluation, scrapinghub/article-extraction-benchmark
``evaluate.py``, re-implemented here): tokens are the ``\\w+`` runs of the lowercased
text (so whitespace and punctuation separate tokens); each text becomes a bag (multiset)
of n-grams of tokens (``--ngram 1`` = bag of tokens, the default here; the benchmark
itself uses 4-gram shingles, ``--ngram 4``). Per page, tp = overlap of the two bags,
fp = predicted minus true, fn = true minus predicted; precision = tp/(tp+fp), recall =
tp/(tp+fn) (both 1 when the two bags are equal, 0 for an empty side). Precision and recall
are each averaged over pages, and F1 is the harmonic mean of those two averages. The
table also shows the mean of the per-page F1 scores.

    .venv/bin/python bench/extraction_quality.py            # all 181 pages
    .venv/bin/python bench/extraction_quality.py --quick    # 60 pages, < 1 min
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from superlab.data.extract import decode_html, extract_text

BENCH = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "web" / "article-extraction-benchmark"
)
TARGET_F1 = 0.90
QUICK_PAGES = 60
_TOKEN = re.compile(r"\w+")


def ngrams(text: str, n: int) -> Counter[tuple[str, ...]]:
    """The bag of token n-grams of ``text`` (one short n-gram when it has fewer tokens)."""
    tokens = _TOKEN.findall(text.lower())
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens)


def page_scores(true: str, pred: str, n: int) -> tuple[float, float]:
    """(precision, recall) of ``pred`` against ``true`` over bags of n-grams."""
    t, p = ngrams(true, n), ngrams(pred, n)
    tp = sum((t & p).values())
    fp, fn = sum((p - t).values()), sum((t - p).values())
    if fp == fn == 0:
        return 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall


def _trafilatura_defaults(html: str, url: str | None) -> str | None:
    import trafilatura

    return trafilatura.extract(html, url=url)


def _resiliparse(html: str, url: str | None) -> str | None:
    return extract_text(html, url, extractor="resiliparse")


def _ours(html: str, url: str | None) -> str | None:
    return extract_text(html, url, extractor="trafilatura")


SYSTEMS: dict[str, Callable[[str, str | None], str | None]] = {
    "trafilatura (superlab)": _ours,
    "trafilatura (defaults)": _trafilatura_defaults,
    "resiliparse main_content": _resiliparse,
}


def _run_page(page_id: str, system: str, truth: dict[str, dict]) -> str:
    html = decode_html(gzip.decompress((BENCH / "html" / f"{page_id}.html.gz").read_bytes()))
    return SYSTEMS[system](html, truth[page_id].get("url")) or ""


def evaluate(system: str, truth: dict[str, dict], workers: int) -> dict[str, float]:
    """Extract every page with ``system``; mean precision/recall/F1 at n=1 and n=4."""
    ids = sorted(truth)
    start = time.perf_counter()
    run = partial(_run_page, system=system, truth=truth)
    with ProcessPoolExecutor(workers) as pool:
        preds = dict(zip(ids, pool.map(run, ids, chunksize=4), strict=True))
    seconds = time.perf_counter() - start
    out: dict[str, float] = {"seconds": seconds}
    for n in (1, 4):
        scores = [page_scores(truth[i]["articleBody"], preds[i], n) for i in ids]
        p = statistics.mean(s[0] for s in scores)
        r = statistics.mean(s[1] for s in scores)
        out[f"p{n}"], out[f"r{n}"] = p, r
        out[f"f{n}"] = 2 * p * r / (p + r) if p + r else 0.0
        out[f"pagef{n}"] = statistics.mean(2 * a * b / (a + b) if a + b else 0.0 for a, b in scores)
    return out


def main() -> int:
    """Print the comparison table and the RESULT lines for superlab's settings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"first {QUICK_PAGES} pages (sorted ids)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS), choices=list(SYSTEMS))
    args = ap.parse_args()
    if not (BENCH / "ground-truth.json").is_file():
        print(f"{BENCH} is absent", file=sys.stderr)
        return 2
    truth = json.loads((BENCH / "ground-truth.json").read_text(encoding="utf-8"))
    if args.quick:
        truth = {k: truth[k] for k in sorted(truth)[:QUICK_PAGES]}
    systems = [s for s in args.systems if s != "resiliparse main_content" or _has("resiliparse")]
    print(f"{len(truth)} pages; tokens = \\w+ of lowercased text; P, R = means over pages")
    print(f"{'extractor':<26} {'P':>6} {'R':>6} {'F1':>6} {'pageF1':>6} {'F1@4':>6} {'sec':>6}")
    results = {}
    for system in systems:
        m = results[system] = evaluate(system, truth, args.workers)
        print(
            f"{system:<26} {m['p1']:6.3f} {m['r1']:6.3f} {m['f1']:6.3f} "
            f"{m['pagef1']:6.3f} {m['f4']:6.3f} {m['seconds']:6.1f}"
        )
    ours = results.get("trafilatura (superlab)")
    if ours is None:
        return 0
    verdict = "PASS" if ours["f1"] >= TARGET_F1 else "FAIL"
    print(f"RESULT extraction_precision {ours['p1']:.4f}")
    print(f"RESULT extraction_recall {ours['r1']:.4f}")
    print(f"RESULT extraction_f1 {ours['f1']:.4f} target >= {TARGET_F1:.2f} {verdict}")
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
