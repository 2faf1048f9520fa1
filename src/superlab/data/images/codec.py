"""Decode one image: PNG bytes (or base64 / a data URL) -> RGB uint8 pixels, or a reason.

Every failure is a reason string, never an exception, so a reader can count and keep it
(``rejects.jsonl``). Pillow is optional (the ``vision`` extra) and imported here.

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


def _pil():  # type: ignore[no-untyped-def]
    return require("PIL.Image", "reading images", extra="vision", package="pillow")


def encode_png(pixels_HWC: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image."""
    out = io.BytesIO()
    _pil().fromarray(pixels_HWC, mode="RGB").save(out, format="PNG")
    return out.getvalue()


def from_base64(text: str) -> bytes | str:
    """The bytes of a base64 string or ``data:image/png;base64,`` URL, or a reason."""
    if text.startswith("data:"):
        if not text.startswith(DATA_URL):
            return f"unsupported data URL {text[:30]!r}: only {DATA_URL}..."
        text = text[len(DATA_URL) :]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        return f"malformed base64: {e}"


def decode(data: bytes, size: int | None = None, max_bytes: int = MAX_BYTES) -> np.ndarray | str:
    """(H, W, 3) uint8 RGB pixels of a PNG, resized to ``size`` x ``size`` if given; or why not."""
    if len(data) > max_bytes:
        return f"image of {len(data)} bytes is over the limit of {max_bytes}"
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                return f"unsupported image format {img.format!r}: only {', '.join(FORMATS)}"
            if max(img.size) > MAX_SIDE:
                return f"image of {img.size[0]}x{img.size[1]} is over {MAX_SIDE} px a side"
            img.load()
            rgb = img.convert("RGB")
    except Exception as e:  # Pillow raises many kinds on a bad file; each is a reject
        return f"unreadable image: {type(e).__name__}: {e}"
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)
