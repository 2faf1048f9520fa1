"""Decode one image: PNG bytes (or base64 / a data URL) -> RGB uint8 pixels, or a reason.

Every failure is a reason string (a ``Reject``: a ``str`` that also carries a short
``code``), never an exception, so a reader can count and keep it (``rejects.jsonl``) and the
server can answer it (``superlab.serve.images``). ``read`` is the whole path from base64 or
a data URL. Pillow is optional (the ``vision`` extra) and imported here.

Legend: H height, W width, C channels (3, RGB).
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from superlab.common.deps import require

FORMATS = ("PNG",)
MAX_BYTES = 1 << 20  # one image's encoded size
MAX_SIDE = 1024  # pixels, either side
DATA_URL = "data:image/png;base64,"


class Reject(str):
    """Why an image was not read, with a ``code``: ``unsupported_image_format``,
    ``invalid_base64``, ``image_too_large`` or ``invalid_image``."""

    code: str

    def __new__(cls, reason: str, code: str) -> Reject:
        out = super().__new__(cls, reason)
        out.code = code
        return out

    def __reduce__(self) -> tuple[type[Reject], tuple[str, str]]:  # pickles with its code
        return Reject, (str(self), self.code)


def _pil():  # type: ignore[no-untyped-def]
    return require("PIL.Image", "reading images", extra="vision", package="pillow")


def encode_png(pixels_HWC: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image."""
    out = io.BytesIO()
    _pil().fromarray(pixels_HWC, mode="RGB").save(out, format="PNG")
    return out.getvalue()


def from_base64(text: str) -> bytes | Reject:
    """The bytes of a base64 string or ``data:image/png;base64,`` URL, or a reason."""
    if text.startswith("data:"):
        if not text.startswith(DATA_URL):
            why = f"unsupported data URL {text[:30]!r}: only {DATA_URL}..."
            return Reject(why, "unsupported_image_format")
        text = text[len(DATA_URL) :]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        return Reject(f"malformed base64: {e}", "invalid_base64")


def decode(data: bytes, size: int | None = None, max_bytes: int = MAX_BYTES) -> np.ndarray | Reject:
    """(H, W, 3) uint8 RGB pixels of a PNG, resized to ``size`` x ``size`` if given; or why not."""
    if len(data) > max_bytes:
        why = f"image of {len(data)} bytes is over the limit of {max_bytes}"
        return Reject(why, "image_too_large")
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                why = f"unsupported image format {img.format!r}: only {', '.join(FORMATS)}"
                return Reject(why, "unsupported_image_format")
            if max(img.size) > MAX_SIDE:
                why = f"image of {img.size[0]}x{img.size[1]} is over {MAX_SIDE} px a side"
                return Reject(why, "image_too_large")
            img.load()
            rgb = img.convert("RGB")
    except Exception as e:  # Pillow raises many kinds on a bad file; each is a reject
        return Reject(f"unreadable image: {type(e).__name__}: {e}", "invalid_image")
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def read(text: str, size: int | None = None, max_bytes: int = MAX_BYTES) -> np.ndarray | Reject:
    """``decode`` of a base64 string or ``data:image/png;base64,`` URL (``from_base64``)."""
    data = from_base64(text)
    return data if isinstance(data, Reject) else decode(data, size, max_bytes)
