"""Templates and subjects of the labelled safety sets (``make_sets.py`` crosses them).

The prompts are data, kept in ``templates.yaml`` beside this module; this module reads
them into the shapes ``make_sets.py`` uses. Each table has a ``heldout`` part, written
before any rule was tuned and measured only at the end, and a ``dev`` part. Prompts
describe requests; none holds harmful content or instructions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PATH = Path(__file__).with_name("templates.yaml")

SplitTable = dict[str, list[str]]  # split (heldout, dev): prompts or subjects


def load(path: Path = PATH) -> dict[str, Any]:
    """The tables of ``path``, by name."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


_T = load()

# minors (S4)
MINORS: SplitTable = _T["minors"]
MINOR_TEMPLATES: SplitTable = _T["minor_templates"]
MINOR_I18N: dict[tuple[str, str], list[str]] = {  # (lang, split): prompts
    (lang, split): prompts
    for split, by_lang in _T["minor_i18n"].items()
    for lang, prompts in by_lang.items()
}
ADV_BASE: SplitTable = _T["adv_base"]  # rewritten adversarially by make_sets

# other categories
OTHER: dict[str, SplitTable] = _T["other"]  # category: {split: [prompts]}
OTHER_I18N: list[tuple[str, str, str, str]] = [  # (category, lang, split, prompt)
    (cat, lang, split, prompt) for cat, lang, split, prompt in _T["other_i18n"]
]
HARM_FRAMES: list[str] = _T["harm_frames"]

# benign
BENIGN_HARD: SplitTable = _T["benign_hard"]
BENIGN_SUBJ: list[str] = _T["benign_subj"]
BENIGN_FRAMES: SplitTable = _T["benign_frames"]
CHILDREN: SplitTable = _T["children"]
PROTECT_FRAMES: SplitTable = _T["protect_frames"]
ADULT_FICTION: SplitTable = _T["adult_fiction"]
FICTION_FRAMES: list[str] = _T["fiction_frames"]
WORDS: SplitTable = _T["words"]
WORD_FRAMES: list[str] = _T["word_frames"]
BENIGN_I18N: list[tuple[str, str]] = [(lang, prompt) for lang, prompt in _T["benign_i18n"]]

# fresh prompts of two probes after the first tuning round (dev items now)
PROBE_HARMFUL: list[tuple[str, str]] = [(cat, prompt) for cat, prompt in _T["probe_harmful"]]
PROBE_BENIGN: list[str] = _T["probe_benign"]
