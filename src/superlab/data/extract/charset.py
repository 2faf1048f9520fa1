"""Bytes of an HTML page to ``str``: BOM, HTTP charset, ``<meta>`` charset, then detection.

The order and the label aliases follow the WHATWG Encoding Standard (BOM first, then the
transport-layer charset, then the ``<meta>`` prescan of the first 1024 bytes), with one
change: a declared charset that fails to decode strictly is not trusted, because crawled
pages often declare the wrong one.
"""

from __future__ import annotations

import codecs
import re

# https://encoding.spec.whatwg.org/#names-and-labels: browsers decode these labels as the
# superset on the right, and pages labelled with the subset use the superset's characters.
_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "tis-620": "cp874",
    "iso-8859-9": "cp1254",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
# <meta charset="x"> or <meta http-equiv="Content-Type" content="text/html; charset=x">
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
PRESCAN_BYTES = 1024  # WHATWG's prescan looks at the first 1024 bytes


def _codec(label: str | bytes | None) -> str | None:
    """A Python codec name for a charset label, or None when Python does not know it."""
    if not label:
        return None
    name = (label.decode("ascii", "ignore") if isinstance(label, bytes) else label).strip().lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header value, if any."""
    m = _HEADER_CHARSET.search(content_type or "")
    return m.group(1) if m else None


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode an HTML body; never raises (the last resort decodes with replacement characters)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    meta = _META_CHARSET.search(data[:PRESCAN_BYTES])
    candidates = [header_charset(content_type), meta.group(1) if meta else None, "utf-8"]
    for label in candidates:
        codec = _codec(label)
        # UTF-16 without a BOM is a mislabel in practice; WHATWG also reads <meta> utf-16 as utf-8.
        if codec is None or codec.startswith("utf-16"):
            continue
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    guess = _detect(data)
    return data.decode(guess or "cp1252", errors="replace")


def _detect(data: bytes) -> str | None:
    """charset_normalizer's guess (a trafilatura dependency), or None without it."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    best = from_bytes(data[: 1 << 16]).best()  # a 64 KiB sample bounds the time it takes
    return best.encoding if best else None
