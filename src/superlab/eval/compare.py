"""Compare eval results side by side, refusing results whose settings differ.

Every ``eval.json`` carries ``settings``: per evaluator, what makes its numbers what
they are besides the weights (the eval data and its hash, prompt format, decoding,
seeds, sequence length). Two results are comparable on an evaluator only when its
settings are equal; otherwise ``compare`` raises ``IncomparableError`` listing every
difference (``probes.seed: 0 vs 1``). Evaluators present in only some results are
left out of the table and named in ``Comparison.missing``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superlab.common.treediff import leaf_diff

# The figures shown for each evaluator: (label, path into the result).
FIGURES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "heldout": [
        ("held-out loss", ("heldout", "loss")),
        ("bits per byte", ("heldout", "bits_per_byte")),
    ],
    "hle": [
        ("HLE accuracy", ("hle", "accuracy")),
        ("HLE calibration error", ("hle", "calibration_error")),
    ],
}


class IncomparableError(ValueError):
    """Results whose settings differ; the message lists each difference."""


@dataclass
class Comparison:
    """Rows of (label, value per result), and the evaluators not in every result."""

    names: list[str]
    rows: list[tuple[str, list[Any]]]
    missing: dict[str, list[str]] = field(default_factory=dict)


def load_result(path: str | Path) -> dict[str, Any]:
    """An ``eval.json``, given the file or its run directory."""
    p = Path(path)
    if p.is_dir():
        p = p / "eval.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no eval.json; run `superlab eval` first")
    result = json.loads(p.read_text())
    if "settings" not in result:
        raise IncomparableError(f"{p}: no 'settings' (written before settings were recorded)")
    return result


def differences(a: Any, b: Any) -> list[str]:
    """Every leaf where ``a`` and ``b`` differ, as ``path: a vs b``."""
    return [f"{path}: {old!r} vs {new!r}" for path, old, new in leaf_diff(a, b)]


def _get(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _probe_figures(result: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    rows: list[tuple[str, tuple[str, ...]]] = []
    for kind, s in (result.get("probes") or {}).get("kinds", {}).items():
        rows.append((f"{kind} accuracy", ("probes", "kinds", kind, "accuracy")))
        for chunk in s.get("by_chunk", {}):
            for rel in ("same", "cross", "straddle"):
                path = ("probes", "kinds", kind, "by_chunk", chunk, rel, "accuracy")
                rows.append((f"{kind} {rel}-chunk (C={chunk})", path))
            fault = ("probes", "kinds", kind, "by_chunk", chunk, "context_fault")
            rows.append((f"{kind} context fault (C={chunk})", fault))
    return rows


def compare(results: list[dict[str, Any]], names: list[str]) -> Comparison:
    """The figures of every evaluator all results ran with equal settings; else raise."""
    settings = [r["settings"] for r in results]
    shared = set(settings[0]).intersection(*settings[1:])
    problems = []
    for section in sorted(shared):
        for name, s in zip(names[1:], settings[1:], strict=True):
            problems += [
                f"{section}.{d} ({names[0]} vs {name})"
                for d in differences(settings[0][section], s[section])
            ]
    if problems:
        raise IncomparableError(
            "results were computed with different settings, refusing to compare: "
            + "; ".join(problems)
        )
    every = set().union(*settings)
    missing = {
        s: [n for n, st in zip(names, settings, strict=True) if s not in st]
        for s in sorted(every - shared)
    }
    rows: list[tuple[str, list[Any]]] = [
        ("weights sha256", [r["weights_sha256"][:12] for r in results])
    ]
    rows.append(("step", [r.get("step") for r in results]))
    for section in sorted(shared):
        figures = _probe_figures(results[0]) if section == "probes" else FIGURES.get(section, [])
        rows += [(label, [_get(r, path) for r in results]) for label, path in figures]
    return Comparison(names, rows, missing)
