"""The run report's per-source section, for a mixture (``data.sources``).

Per source: documents and tokens in and out of each data step with removals by reason
(from ``data/stats.json``), the planned and realised shares of training windows and the
epochs used, and held-out loss and bits per byte (from ``eval.json``).
"""

from __future__ import annotations

import json
from typing import Any

from superlab.common import RunDir
from superlab.report.html import Section, esc, table


def _json(path: Any) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def sources_sections(run: RunDir) -> list[Section]:
    """The "Sources" section, or none for a single-source run."""
    per = _json(run.data_stats).get("sources")
    if not isinstance(per, dict) or not per:
        return []
    ev = _json(run.eval)
    mixture, heldout = ev.get("mixture") or {}, ev.get("heldout_by_source") or {}
    rows = []
    for name, s in per.items():
        m, h = mixture.get(name) or {}, heldout.get(name) or {}
        rows.append((
            name, s.get("docs_in"), s.get("docs_out"), (s.get("tokens") or {}).get("train"),
            s.get("natural_share"), m.get("planned_share"), m.get("realised_share"),
            m.get("epochs"), h.get("loss"), h.get("bits_per_byte"),
        ))  # fmt: skip
    head = ("source", "docs in", "docs out", "train tokens", "natural share", "planned share",
            "realised share", "epochs", "held-out loss", "bits/byte")  # fmt: skip
    parts = [table(head, rows)]
    for name, s in per.items():
        steps = [
            (step, st.get("docs_in"), st.get("docs_out"), st.get("tokens_in"),
             st.get("tokens_out"), ", ".join(f"{k} {v}" for k, v in st.get("removed", {}).items()))
            for step, st in (s.get("steps") or {}).items()
        ]  # fmt: skip
        parts.append(
            f"<details><summary>{esc(name)}: each step</summary>"
            + table(
                ("step", "docs in", "docs out", "tokens in ≈", "tokens out ≈", "removed"), steps
            )
            + "</details>"
        )
    return [Section("sources", "Sources", "".join(parts))]
