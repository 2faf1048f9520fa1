"""Main-text extraction from HTML with trafilatura (default) or resiliparse (optional, faster).

Settings were chosen on the scrapinghub article-extraction benchmark (181 pages, token F1;
``bench/extraction_quality.py`` prints the comparison with trafilatura's defaults).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from superlab.common.deps import require
from superlab.data.errors import DataError
from superlab.data.extract.charset import decode_html

EXTRACTORS = ("trafilatura", "resiliparse")

# trafilatura.extract keyword arguments, measured on all 181 pages (token P / R / F1):
# defaults .933/.983/.957; comments off .947/.983/.965; + favor_precision
# .964/.975/.970 (chosen); favor_recall .946/.983/.964; tables off .958/.963/.961 (with
# favor_precision); fast (no fallback) .953/.951/.952 (with favor_precision). Comments are
# not the article, and the benchmark's ground truth has none.
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "include_tables": True,
    "favor_precision": True,
    "deduplicate": False,
}


def _need(package: str) -> ModuleType:
    """Import ``package`` (dotted), or a ``DataError`` naming the extra that brings it."""
    name = package.split(".")[0]
    extra = "web" if name == "trafilatura" else name
    return require(package, f"HTML extraction with {name}", extra, error=DataError)


def extract_text(
    html: str | bytes,
    url: str | None = None,
    extractor: str = "trafilatura",
    content_type: str | None = None,
) -> str | None:
    """The main text of ``html`` (bytes decoded per ``content_type``, meta, detection), or None."""
    if isinstance(html, bytes):
        html = decode_html(html, content_type)
    if not html.strip():
        return None
    if extractor == "trafilatura":
        text = _trafilatura(html, url)
    elif extractor == "resiliparse":
        text = _resiliparse(html)
    else:
        raise DataError(f"unknown extractor {extractor!r} (expected one of {EXTRACTORS})")
    text = (text or "").strip()
    return text or None


def require_extractor(extractor: str) -> None:
    """Raise ``DataError`` now, naming the package, if ``extractor`` cannot be imported."""
    if extractor not in EXTRACTORS:
        raise DataError(f"unknown extractor {extractor!r} (expected one of {EXTRACTORS})")
    _need(extractor)


def _trafilatura(html: str, url: str | None) -> str | None:
    trafilatura = _need("trafilatura")
    return trafilatura.extract(html, url=url, **TRAFILATURA_OPTIONS)


def _resiliparse(html: str) -> str | None:
    html2text = _need("resiliparse.extract.html2text")
    tree = _need("resiliparse.parse.html").HTMLTree.parse(html)
    # main_content drops navigation, headers and footers by resiliparse's own heuristics.
    return html2text.extract_plain_text(tree, main_content=True, preserve_formatting=True)
