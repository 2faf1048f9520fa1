"""HTML to text: ``extract_text(html, url)`` returns a page's main text, or None when it has none.

``decode_html(data, content_type)`` turns a response body into ``str`` first (charset from the
BOM, the HTTP header or ``<meta>``, then detection). Extractors (trafilatura, resiliparse) are
optional dependencies, imported only when used.
"""

from superlab.data.extract.charset import decode_html
from superlab.data.extract.html import EXTRACTORS, extract_text, require_extractor

__all__ = ["EXTRACTORS", "decode_html", "extract_text", "require_extractor"]
