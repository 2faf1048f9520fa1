"""The one recursive diff of two nested dicts (recipes, manifests, eval settings).

``leaf_diff`` walks both trees and yields ``(dotted.path, old, new)`` for every leaf that
differs; a key one side lacks shows as ``MISSING`` on that side. Callers only format.
"""

from __future__ import annotations

from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "<unset>"


MISSING: Any = _Missing()  # the value on the side that lacks a key


def leaf_diff(a: Any, b: Any, prefix: str = "", sort: bool = True) -> list[tuple[str, Any, Any]]:
    """Leaves that differ as ``(path, a_value, b_value)``.

    Keys are visited sorted (``sort=True``) or in ``a``'s order followed by the keys only
    ``b`` has.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str) if sort else [*a, *(k for k in b if k not in a)]
        out: list[tuple[str, Any, Any]] = []
        for k in keys:
            out += leaf_diff(a.get(k, MISSING), b.get(k, MISSING), f"{prefix}{k}.", sort)
        return out
    return [] if a == b else [(prefix.rstrip("."), a, b)]
