"""Where a scenario's inputs come from: the YAML comment nearest each dotted path.

A scenario cites its figures in comments (``# Meta 10-K 2024: ...``) above a key
or at the end of its line. ``sources(path)`` maps every key's dotted path to that
text; ``source_for`` walks up to the nearest ancestor that has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from superlab.config.load import line_index


def _comment_at(lines: list[str], line: int) -> str:
    """The comment block right above 1-based ``line`` plus its end-of-line comment."""
    above: list[str] = []
    i = line - 2
    while i >= 0 and lines[i].lstrip().startswith("#"):
        above.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    text = lines[line - 1]
    inline = text.split(" #", 1)[1].strip() if " #" in text else ""
    return " ".join(part for part in (*above, inline) if part)


def sources(path: str | Path) -> dict[str, str]:
    """Every commented key of a scenario YAML, by dotted path -> comment text."""
    text = Path(path).read_text("utf-8")
    node = yaml.compose(text)
    lines = text.splitlines()
    found = {".".join(k): _comment_at(lines, int(n)) for k, n in line_index(node).items()}
    return {k: v for k, v in found.items() if v}


def source_for(found: Mapping[str, str], dotted: str) -> str:
    """The comment for ``dotted`` or its nearest commented ancestor; "" if none."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in found:
            return found[".".join(parts[:n])]
    return ""
